"""Offline activation from the pre-issued stock, and reconciliation when the cloud returns."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from forecourt.cloud.offline.service import OfflineService
from forecourt.edge.offline import PackageState
from forecourt.edge.operators import ReviewKind
from forecourt.edge.wiring import Edge, EdgeSettings, start_edge
from forecourt.edge.workflow import WorkflowRecord, WorkflowState
from forecourt.store.registry import OfflinePackageRow, VehicleRow
from tests.e2e.checks import held_by_cloud, ledger_is_whole, sent_by_edge
from tests.e2e.world import CloudStack, People, RunningCar, hire

UNREACHABLE = "https://127.0.0.1:9"  # discard port: nothing listens, the handshake never starts


def _activate_offline(
    stack: CloudStack, edge: Edge, people: People, car: RunningCar
) -> WorkflowRecord:
    wf = edge.activations.start(
        people.technician.operator, vin=car.vin, features=stack.bought(car.vehicle)
    )
    waiting = edge.activations.wait(wf, timeout=60)
    assert (waiting.state, waiting.offline) == (WorkflowState.AWAITING_REVIEW, True)
    assert ReviewKind.OFFLINE_USE.value in waiting.context["reviews"]
    for review in waiting.context["reviews"].values():
        edge.reviews.approve(people.senior.operator, review["id"], people.senior.code())
        edge.settings.clock.advance(30)  # type: ignore[attr-defined]  # a fresh TOTP step
    edge.activations.review_decided(wf)
    return edge.activations.wait(wf, timeout=60)


def _offline(settings: EdgeSettings) -> EdgeSettings:
    return dataclasses.replace(settings, cloud_url=UNREACHABLE)


def test_offline_activation_is_reconciled_once_and_a_copied_package_is_a_double_use(
    stack: CloudStack, tmp_path: Path
) -> None:
    vehicle = stack.activatable(exclude={c.vin for c in stack.cars})
    car = stack.start_car(vehicle)
    assert vehicle.dealer_id is not None
    settings = stack.edge_settings(vehicle.dealer_id, tmp_path / "edge-a")
    stack.register_edge_log(settings)
    with start_edge(settings, background=False) as edge:  # online: stock and images fetched
        people = hire(edge)
        edge.sync_operators()
        stocked = [p for p in edge.offline.stock() if p.vin == car.vin]
        assert [p.state for p in stocked] == [PackageState.AVAILABLE]
    clone = tmp_path / "edge-b"
    shutil.copytree(settings.data_dir, clone)  # a copied box: the same package twice

    with start_edge(_offline(settings), background=False) as edge:  # the cloud is unreachable
        record = _activate_offline(stack, edge, people, car)
        assert record.state is WorkflowState.DONE, (record.error_code, record.error_detail)
        assert record.offline
        assert edge.sync_now().retried > 0  # the use waits in the outbox
        ledger_is_whole(edge)
    assert car.car.state.activation_counter == 1

    with start_edge(settings, background=False) as edge:  # the link is back: drained at start
        assert edge.outbox.pending_count() == 0 and edge.outbox.dead() == []
        held = {p.package_id: p.state for p in edge.offline.stock()}
        assert held[stocked[0].package_id] is PackageState.USED
        # The cloud now knows the car activated: no new package for it, at start or later.
        assert _cloud_state(stack, car.vin) == "activated"
        edge.refill_offline_stock()
        assert [p.state for p in edge.offline.stock() if p.vin == car.vin] == [PackageState.USED]
        assert edge.sync_now().dead == 0
        assert held_by_cloud(stack, car.vin) == sent_by_edge(edge, car.vin)  # each event once
    package_id = stocked[0].package_id
    assert _uses(stack, package_id) == 1  # reported once, however often the push was retried
    assert OfflineService(stack.world.context).double_uses() == []

    clone_settings = dataclasses.replace(settings, data_dir=clone)
    with start_edge(_offline(clone_settings), background=False) as edge:
        stale = _activate_offline(stack, edge, people, car)
        assert (stale.state, stale.error_code) == (WorkflowState.REFUSED, "offline_package_stale")
        # The copied box claims the same package for a workflow of its own, as it would for a
        # car that had not moved on yet (this car has: the box would refuse it as stale).
        with edge.sessions.begin() as session:
            claimed = edge.offline.claim_in(
                session,
                vin=car.vin,
                car_counter=0,
                workflow_id="workflow-on-the-copied-box",
                operator_id=people.technician.operator.id,
                review_request_id=None,
            )
        assert claimed.package_id == stocked[0].package_id
    with start_edge(clone_settings, background=False) as edge:  # the cloud answers at start
        assert [p.package_id for p in edge.offline.double_uses()] == [package_id]
    doubles = OfflineService(stack.world.context).double_uses()
    assert [(d["package_id"], len(d["uses"])) for d in doubles] == [(package_id, 2)]
    assert car.car.state.activation_counter == 1


def _uses(stack: CloudStack, package_id: str) -> int:
    with stack.world.context.db.sessions() as session:
        row = session.get(OfflinePackageRow, package_id)
        assert row is not None
        return int(row.use_count)


def _cloud_state(stack: CloudStack, vin: str) -> str:
    with stack.world.context.db.sessions() as session:
        row = session.get(VehicleRow, vin)
        assert row is not None
        return row.state
