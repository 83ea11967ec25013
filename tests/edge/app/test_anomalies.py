"""Anomaly warnings through the real console: activations and sign-ins driven as a technician
would, or rows written by the workflow's own repository, then read back from ``/api/v1/status``,
the status page and ``/metrics``."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from structlog.testing import capture_logs

from forecourt.edge.anomaly import AnomalyEventRepository
from forecourt.edge.workflow.repository import WorkflowStore
from tests.edge.app.conftest import Console
from tests.edge.app.world import ConsoleWorld, serve
from tests.edge.workflow.fakes import VIN

pytestmark = pytest.mark.anyio


def _checks(status: dict[str, object]) -> dict[str, dict[str, object]]:
    checks = status["checks"]
    assert isinstance(checks, list)
    return {c["name"]: c for c in checks}


def _burst(world: ConsoleWorld, cars: int) -> None:
    """``cars`` activations requested by the technician, 30 s apart, through the real store."""
    store = WorkflowStore(world.env.sessions, world.env.audit)
    for n in range(cars):
        world.env.clock.advance(30)
        store.create(
            dealer_id=world.services.dealer_id,
            vin=f"WVWZZZ1JZXW{n:06d}",
            operator_id=world.technician.operator.id,
            context={},
            now=world.env.clock(),
        )


async def test_a_quiet_edge_reports_no_anomalies(console: Console) -> None:
    await console.login(console.world.technician)
    checks = _checks((await console.get("/api/v1/status")).json())
    assert checks["anomalies"]["status"] == "ok"
    assert not [name for name in checks if name.startswith("anomaly_")]


async def test_an_after_hours_activation_is_a_warning_with_what_to_do(console: Console) -> None:
    world = console.world
    world.env.clock.advance(12 * 3600)  # 09:00 → 21:00 UTC, after the default 20:00 closing
    await console.login(world.technician)
    started = await console.post("/api/v1/activations", {"vin": VIN, "features": ["CONNECT"]})
    world.activation.wait(started.json()["workflow_id"])
    status = (await console.get("/api/v1/status")).json()
    check = _checks(status)["anomaly_off_hours"]
    username = world.technician.operator.username
    assert check["status"] == "warn" and status["status"] in ("warn", "error")
    assert check["code"] == "off_hours" and check["severity"] == "warning"
    assert check["subject"] == f"operator:{username}"
    assert "outside opening hours 07:00–20:00" in str(check["message"])
    assert "Ask" in str(check["recommendation"])
    assert str(check["recommendation"]) in str(check["summary"])  # the CLI prints the summary
    page = await console.get("/status")
    assert 'data-check="anomaly_off_hours"' in page.text
    assert "outside opening hours" in page.text


async def test_a_burst_is_an_error_logged_once_however_often_status_is_read(
    console: Console,
) -> None:
    world = console.world
    await console.login(world.senior)
    _burst(world, 10)
    checks = _checks((await console.get("/api/v1/status")).json())
    assert "anomaly_activation_burst" not in checks  # ten cars in ten minutes is allowed
    _burst(world, 11)
    with capture_logs() as logs:
        first = (await console.get("/api/v1/status")).json()
        second = (await console.get("/api/v1/status")).json()
    assert first["status"] == second["status"] == "error"
    check = _checks(second)["anomaly_activation_burst"]
    assert check["status"] == "error" and check["count"] == 11
    assert "limit 10 in 10 min" in str(check["message"])
    raised = [e for e in logs if e["event"] == "anomaly_raised"]
    assert [(e["code"], e["log_level"]) for e in raised] == [("activation_burst", "warning")]


async def test_wrong_codes_for_an_account_warn_then_its_lock_is_critical_until_a_good_sign_in(
    console: Console, console2: Console
) -> None:
    world = console.world
    await console.login(world.manager)
    victim = world.technician
    limit = world.env.operators.policy.max_failed_attempts  # the test world locks at 3

    async def wrong() -> None:
        refused = await console2.http.post(
            "/api/v1/session",
            json={"username": victim.operator.username, "password": "wrong", "totp_code": "000000"},
        )
        assert refused.status_code == 401

    for _ in range(limit - 1):
        await wrong()
    checks = _checks((await console.get("/api/v1/status")).json())
    assert "anomaly_signin_failures" not in checks  # two in a row: below the default three
    await wrong()
    check = _checks((await console.get("/api/v1/status")).json())["anomaly_signin_failures"]
    assert check["status"] == "error" and check["count"] == limit
    assert "locked until" in str(check["message"])
    world.env.clock.advance(world.env.operators.policy.lockout_period.total_seconds())
    assert (await console2.login(victim)).status_code == 200
    checks = _checks((await console.get("/api/v1/status")).json())
    assert "anomaly_signin_failures" not in checks and checks["anomalies"]["status"] == "ok"


def test_metrics_show_active_anomalies_by_code(world: ConsoleWorld) -> None:
    _burst(world, 11)
    world.env.clock.advance(12 * 3600)  # the burst is over, and still within the day's look-back
    with serve(world.app) as base, httpx.Client(base_url=base) as client:
        text = client.get("/metrics").text
        assert 'forecourt_edge_anomalies{code="activation_burst"} 1.0' in text
        assert 'forecourt_edge_anomalies{code="off_hours"} 0.0' in text
        assert 'forecourt_edge_anomalies_raised_total{code="activation_burst"} 1.0' in text
        world.env.clock.advance(24 * 3600)  # now past the look-back
        text = client.get("/metrics").text
        assert 'forecourt_edge_anomalies{code="activation_burst"} 0.0' in text
        assert 'forecourt_edge_anomalies_raised_total{code="activation_burst"} 1.0' in text


def test_lookback_bounds_what_the_repository_reads(world: ConsoleWorld) -> None:
    _burst(world, 2)
    now = world.env.clock()
    recent = world.services.anomalies.thresholds.lookback
    repo = AnomalyEventRepository(world.env.sessions, world.services.dealer_id)
    assert len(repo.recent(now, recent).activations) == 2
    assert repo.recent(now + recent, recent).activations == ()
    other = AnomalyEventRepository(world.env.sessions, "dealer-b")
    assert other.recent(now, timedelta(days=1)).activations == ()
