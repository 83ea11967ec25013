"""``repeated_refusals`` and ``offline_use_spike`` through the running console: activations the
cloud refuses and offline packages used after a reviewed outage, driven over the API, then read
back from ``/api/v1/status`` and ``/metrics``. The thresholds come from the ``[anomaly]`` table of
the settings file, set small; time moves only by the world's clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from forecourt.edge.cloud_client import CloudRefused
from tests.edge.app.conftest import Console
from tests.edge.app.world import ConsoleWorld, build_world, serve
from tests.edge.workflow.fakes import OTHER_VIN, VIN, offline_offer

pytestmark = pytest.mark.anyio

#: Two refusals in a row within 10 minutes; more than one offline use within 30 minutes.
SETTINGS = """
[anomaly]
refusal_run = 2
refusal_window = 600
offline_max_uses = 1
offline_window = "PT30M"
"""
REFUSAL_WINDOW = 600
OFFLINE_WINDOW = 1800


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsoleWorld]:
    """The console world, started with the settings file above and no anomaly variable."""
    for name in os.environ:
        if name.startswith("FORECOURT_ANOMALY_"):
            monkeypatch.delenv(name)
    config = tmp_path / "forecourt.toml"
    config.write_text(SETTINGS, encoding="utf-8")
    monkeypatch.setenv("FORECOURT_CONFIG", str(config))
    yield from build_world(tmp_path)


def _anomalies(status: dict[str, object], code: str) -> dict[str, dict[str, object]]:
    """The status rows for ``code``, by subject (one code can be raised for several subjects)."""
    checks = status["checks"]
    assert isinstance(checks, list)
    return {c["subject"]: c for c in checks if c["name"] == f"anomaly_{code}"}


async def _status(console: Console, code: str) -> dict[str, dict[str, object]]:
    response = await console.get("/api/v1/status")
    assert response.status_code == 200
    return _anomalies(response.json(), code)


def _gauge(world: ConsoleWorld, code: str) -> str:
    """The ``forecourt_edge_anomalies`` line for ``code`` as a Prometheus scrape reads it."""
    with serve(world.app) as base, httpx.Client(base_url=base) as client:
        text = client.get("/metrics").text
    [line] = [
        ln
        for ln in text.splitlines()
        if ln.startswith(f'forecourt_edge_anomalies{{code="{code}"}}')
    ]
    return line


async def _activate(console: Console, vin: str) -> dict[str, object]:
    """One activation of ``vin`` started by the signed-in operator, run to its end or a review."""
    started = await console.post("/api/v1/activations", {"vin": vin, "features": ["CONNECT"]})
    assert started.status_code == 202, started.text
    workflow_id = started.json()["workflow_id"]
    console.world.activation.wait(workflow_id)
    progress = (await console.get(f"/api/v1/activations/{workflow_id}")).json()
    assert isinstance(progress, dict)
    return progress


async def test_cloud_refusals_in_a_row_warn_for_the_operator_and_the_car(
    console: Console,
) -> None:
    world = console.world
    username = world.technician.operator.username
    await console.login(world.technician)
    world.env.cloud.refusal = CloudRefused("authorise", 403, ("not_entitled",))

    first = await _activate(console, VIN)
    assert (first["state"], first["error_code"]) == ("refused", "cloud_refused")
    assert await _status(console, "repeated_refusals") == {}  # one refusal is not a row
    assert _gauge(world, "repeated_refusals").endswith(" 0.0")

    world.env.clock.advance(REFUSAL_WINDOW)  # the next one is exactly a window later: too slow
    assert (await _activate(console, VIN))["error_code"] == "cloud_refused"
    assert await _status(console, "repeated_refusals") == {}

    world.env.clock.advance(60)
    with capture_logs() as logs:
        assert (await _activate(console, VIN))["error_code"] == "cloud_refused"
        rows = await _status(console, "repeated_refusals")
    assert set(rows) == {f"operator:{username}", f"vin:{VIN}"}
    for row in rows.values():
        assert row["status"] == "warn" and row["severity"] == "warning"
        assert row["count"] == 3  # the whole row, the slow start included
        assert "3 activations in a row refused" in str(row["message"])
        assert "cloud_refused" in str(row["message"])
        assert "probing or tampering" in str(row["recommendation"])
    raised = [e for e in logs if e["event"] == "anomaly_raised"]
    assert sorted(e["subject"] for e in raised) == [f"operator:{username}", f"vin:{VIN}"]
    assert _gauge(world, "repeated_refusals").endswith(" 2.0")

    world.env.clock.advance(60)
    assert (await _activate(console, VIN))["error_code"] == "cloud_refused"
    rows = await _status(console, "repeated_refusals")
    assert rows[f"vin:{VIN}"]["status"] == "error"  # twice the row: critical
    assert rows[f"vin:{VIN}"]["severity"] == "critical"


async def test_a_success_ends_the_operators_row_but_not_the_row_of_the_car_refused(
    console: Console,
) -> None:
    world = console.world
    username = world.technician.operator.username
    await console.login(world.technician)
    world.env.cloud.refusal = CloudRefused("authorise", 403, ("not_entitled",))
    assert (await _activate(console, VIN))["error_code"] == "cloud_refused"
    world.env.cloud.refusal = None
    world.env.clock.advance(30)
    assert (await _activate(console, OTHER_VIN))["state"] == "done"  # the operator's success
    world.env.cloud.refusal = CloudRefused("authorise", 403, ("not_entitled",))
    world.env.clock.advance(30)
    assert (await _activate(console, VIN))["error_code"] == "cloud_refused"
    rows = await _status(console, "repeated_refusals")
    assert set(rows) == {f"vin:{VIN}"}  # not f"operator:{username}"
    assert username not in str(rows[f"vin:{VIN}"]["subject"])
    assert _gauge(world, "repeated_refusals").endswith(" 1.0")


def _stock(world: ConsoleWorld, package_id: str, vin: str, counter: int) -> None:
    """A package the cloud hands out for ``vin`` while it is reachable, pulled into stock."""
    now = world.env.clock()
    world.env.cloud.stock.append(
        offline_offer(
            package_id,
            vin=vin,
            counter=counter,
            images=world.env.images,
            not_before=now - timedelta(hours=1),
            not_after=now + timedelta(days=2),
        )
    )
    world.env.offline.refill(world.env.cloud)


async def _offline_activation(console: Console, reviewer: Console, vin: str) -> None:
    """An activation while the cloud is down: the senior approves the package's use, it runs."""
    world = console.world
    await console.login(world.technician)  # signed in afresh: sessions end after idle time
    await reviewer.login(world.senior)
    progress = await _activate(console, vin)
    assert progress["state"] == "awaiting_review", progress
    pending = (await reviewer.get("/api/v1/reviews", state="pending")).json()
    assert pending and all(r["payload"]["vin"] == vin for r in pending)
    for review in pending:
        world.env.clock.advance(30)
        approved = await reviewer.post(
            f"/api/v1/reviews/{review['id']}/approve", {"totp_code": world.senior.code()}
        )
        assert approved.status_code == 200, approved.text
    world.activation.wait(str(progress["workflow_id"]))
    done = (await console.get(f"/api/v1/activations/{progress['workflow_id']}")).json()
    assert done["state"] == "done", done


def _outage_with_stock(world: ConsoleWorld) -> None:
    """One package for each of the two cars in stock, then the cloud link goes down."""
    _stock(world, "pkg-volta", VIN, 5)
    _stock(world, "pkg-terra", OTHER_VIN, 5)
    world.env.cloud.online = False


async def test_offline_packages_used_fast_warn_for_the_store(
    console: Console, console2: Console
) -> None:
    world = console.world
    _outage_with_stock(world)
    await _offline_activation(console, console2, VIN)
    assert await _status(console, "offline_use_spike") == {}  # one use is within the limit
    assert _gauge(world, "offline_use_spike").endswith(" 0.0")

    world.env.clock.advance(300)
    with capture_logs() as logs:
        await _offline_activation(console, console2, OTHER_VIN)
        rows = await _status(console, "offline_use_spike")
    assert set(rows) == {"store"}
    row = rows["store"]
    assert row["status"] == "warn" and row["severity"] == "warning" and row["count"] == 2
    assert "2 offline activation packages used" in str(row["message"])
    assert "limit 1 in 30 min" in str(row["message"])
    assert "cloud link was really down" in str(row["recommendation"])
    assert [e["code"] for e in logs if e["event"] == "anomaly_raised"] == ["offline_use_spike"]
    assert _gauge(world, "offline_use_spike").endswith(" 1.0")

    world.env.clock.advance(timedelta(days=1).total_seconds())  # past the look-back
    await console.login(world.technician)
    assert await _status(console, "offline_use_spike") == {}
    assert _gauge(world, "offline_use_spike").endswith(" 0.0")


async def test_offline_uses_further_apart_than_the_window_do_not_warn(
    console: Console, console2: Console
) -> None:
    world = console.world
    _outage_with_stock(world)
    await _offline_activation(console, console2, VIN)
    world.env.clock.advance(OFFLINE_WINDOW)  # the next use is more than a window later
    await _offline_activation(console, console2, OTHER_VIN)
    assert [p.state.value for p in world.env.offline.stock()] == ["used", "used"]
    assert await _status(console, "offline_use_spike") == {}
    assert _gauge(world, "offline_use_spike").endswith(" 0.0")
