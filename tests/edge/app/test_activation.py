"""Activations from the console: start, live progress over SSE, dual review, batch, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.edge.app.conftest import Console
from tests.edge.app.world import FOREIGN_VIN, build_world, serve
from tests.edge.workflow.fakes import OTHER_VIN, VIN

pytestmark = pytest.mark.anyio


async def test_a_started_activation_reaches_done_and_the_car_shows_it(console: Console) -> None:
    world = console.world
    await console.login(world.technician)
    features = (await console.get("/api/v1/features")).json()
    connect = next(f for f in features if f["code"] == "CONNECT")
    assert connect["purpose"] and connect["changed_functions"]
    assert connect["expected_duration_s"] > 0 and connect["unavailable_meanwhile"]
    started = await console.post("/api/v1/activations", {"vin": VIN, "features": ["CONNECT"]})
    assert started.status_code == 202
    workflow_id = started.json()["workflow_id"]
    world.activation.wait(workflow_id)
    progress = (await console.get(f"/api/v1/activations/{workflow_id}")).json()
    assert progress["state"] == "done" and progress["percent"] == 100
    assert all(step["status"] == "done" for step in progress["steps"])
    cars = {c["vin"]: c for c in (await console.get("/api/v1/vehicles")).json()}
    assert cars[VIN]["state"] == "done" and cars[VIN]["model"] == "Volta"
    assert cars[OTHER_VIN]["state"] == "new"


def _events(body: str) -> list[tuple[str, dict[str, object]]]:
    out = []
    for block in body.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_progress_streams_as_server_sent_events_until_done(tmp_path: Path) -> None:
    for world in build_world(tmp_path):
        with serve(world.app) as base, httpx.Client(base_url=base) as client:
            world.env.clock.advance(30)
            login = client.post(
                "/api/v1/session",
                json={
                    "username": world.technician.operator.username,
                    "password": world.technician.password,
                    "totp_code": world.technician.code(),
                },
            ).json()
            started = client.post(
                "/api/v1/activations",
                json={"vin": VIN, "features": ["CONNECT"]},
                headers={"x-csrf-token": login["csrf_token"]},
            ).json()
            with client.stream(
                "GET", f"/api/v1/activations/{started['workflow_id']}/events", timeout=20
            ) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                body = "".join(stream.iter_text())
            metrics = client.get("/metrics").text
    events = _events(body)
    assert events[-1][0] == "end"
    states = [e["state"] for kind, e in events if kind == "progress"]
    assert states[-1] == "done"
    assert 'forecourt_edge_activations_total{outcome="done"} 1.0' in metrics
    assert 'forecourt_edge_activation_step_seconds_count{state="transferring"} 1.0' in metrics


async def test_a_foreign_car_waits_for_a_manager_the_requester_cannot_approve_it(
    console: Console, console2: Console
) -> None:
    world = console.world
    await console.login(world.technician)
    workflow_id = (
        await console.post("/api/v1/activations", {"vin": FOREIGN_VIN, "features": ["CONNECT"]})
    ).json()["workflow_id"]
    world.activation.wait(workflow_id)
    assert (await console.get(f"/api/v1/activations/{workflow_id}")).json()[
        "state"
    ] == "awaiting_review"
    (review,) = (await console.get("/api/v1/reviews", state="pending")).json()
    assert review["kind"] == "foreign_vehicle" and review["own"] and not review["can_decide"]
    assert review["payload"]["vin"] == FOREIGN_VIN

    world.env.clock.advance(30)
    own = await console.post(
        f"/api/v1/reviews/{review['id']}/approve", {"totp_code": world.technician.code()}
    )
    assert own.status_code == 403 and own.json()["code"] in (
        "self_review_refused",
        "permission_denied",
    )

    await console2.login(world.senior)
    senior = await console2.post(
        f"/api/v1/reviews/{review['id']}/approve", {"totp_code": world.senior.code()}
    )
    assert senior.status_code == 403 and senior.json()["code"] == "reviewer_not_qualified"

    await console2.login(world.manager)
    listed = (await console2.get("/api/v1/reviews", state="pending")).json()
    assert listed[0]["can_decide"]
    assert world.technician.operator.username in listed[0]["requester"]
    wrong = await console2.post(f"/api/v1/reviews/{review['id']}/approve", {"totp_code": "123456"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "step_up_failed"
    world.env.clock.advance(30)
    approved = await console2.post(
        f"/api/v1/reviews/{review['id']}/approve",
        {"totp_code": world.manager.code(), "note": "transfer from dealer-b agreed"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    world.activation.wait(workflow_id)
    assert (await console.get(f"/api/v1/activations/{workflow_id}")).json()["state"] == "done"


async def test_a_rejected_review_ends_the_activation_refused_with_its_reason(
    console: Console, console2: Console
) -> None:
    world = console.world
    await console.login(world.technician)
    workflow_id = (
        await console.post("/api/v1/activations", {"vin": FOREIGN_VIN, "features": ["CONNECT"]})
    ).json()["workflow_id"]
    world.activation.wait(workflow_id)
    (review,) = (await console.get("/api/v1/reviews", state="pending")).json()
    await console2.login(world.manager)
    rejected = await console2.post(
        f"/api/v1/reviews/{review['id']}/reject", {"note": "car belongs to another dealer"}
    )
    assert rejected.json()["state"] == "rejected"
    world.activation.wait(workflow_id)
    progress = (await console.get(f"/api/v1/activations/{workflow_id}")).json()
    assert progress["state"] == "refused" and progress["error_code"] == "review_rejected"


async def test_a_batch_is_one_review_and_needs_a_senior_requester(console: Console) -> None:
    world = console.world
    await console.login(world.senior)
    response = await console.post(
        "/api/v1/activations/batch",
        {"vins": [VIN, OTHER_VIN], "features": ["CONNECT"], "reason": "fleet delivery"},
    )
    assert response.status_code == 202
    ids = response.json()["workflow_ids"]
    assert len(ids) == 2
    pending = (await console.get("/api/v1/reviews", state="pending")).json()
    assert [r["kind"] for r in pending] == ["batch_activation"]
    assert sorted(pending[0]["payload"]["workflow_ids"]) == sorted(ids)


async def test_status_and_health_report_the_edge_self_check(console: Console) -> None:
    await console.login(console.world.technician)
    status = (await console.get("/api/v1/status")).json()
    checks = {c["name"]: c for c in status["checks"]}
    assert checks["database"]["status"] == "ok"
    assert checks["offline_stock"]["status"] == "warn"  # nothing in stock for a cloud outage
    assert status["status"] in ("warn", "error")
    health = await console.get("/healthz")
    assert health.json() == {"status": "ok", "dealer_id": "dealer-a"}
