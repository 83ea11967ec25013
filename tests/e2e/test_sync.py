"""The edge's outbox reaches the cloud for real: consent rows, the R156 software record, steps,
each held once however often the edge pushes (a crash after the cloud's commit but before the
edge marked its messages sent is replayed here by un-marking them)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from forecourt.cloud.sync.service import consent_records, software_history
from forecourt.edge.wiring import start_edge
from forecourt.edge.workflow import WorkflowState
from forecourt.store.edge import EdgeOutboxMessage
from tests.e2e.checks import held_by_cloud, sent_by_edge
from tests.e2e.world import CloudStack, hire


def test_an_online_activation_reaches_the_dossier_once_even_when_the_edge_pushes_it_again(
    stack: CloudStack, tmp_path: Path
) -> None:
    vehicle = stack.activatable(exclude={c.vin for c in stack.cars})
    car = stack.start_car(vehicle)
    assert vehicle.dealer_id is not None
    settings = stack.edge_settings(vehicle.dealer_id, tmp_path / "edge")
    stack.register_edge_log(settings)
    with start_edge(settings, background=False) as edge:
        people = hire(edge)
        edge.sync_operators()
        wf = edge.activations.start(
            people.technician.operator,
            vin=car.vin,
            features=stack.bought(vehicle),
            consent=stack.consent(vehicle),
        )
        record = edge.activations.wait(wf, timeout=60)
        assert record.state is WorkflowState.DONE, (record.error_code, record.error_detail)
        first = edge.sync_now()
        assert first.dead == 0 and first.retried == 0 and first.duplicates == 0
        sent = sent_by_edge(edge, car.vin)
        assert held_by_cloud(stack, car.vin) == sent and len(sent) > 8  # steps, consent, done

        # The edge crashed after the cloud committed, before it marked the batch sent.
        with edge.sessions.begin() as s:
            s.execute(
                update(EdgeOutboxMessage)
                .where(EdgeOutboxMessage.subject == car.vin)
                .values(sent_at=None)
            )
        again = edge.sync_now()
        assert (again.sent, again.duplicates, again.dead) == (0, len(sent), 0)
        assert edge.outbox.pending_count() == 0
    assert held_by_cloud(stack, car.vin) == sent  # nothing doubled

    with stack.world.context.db.sessions() as session:
        history = software_history(session, car.vin)
        consents = consent_records(session, car.vin)
    serials = {e.serial for e in vehicle.ecus}
    assert {h["ecu_serial"] for h in history} == serials and len(history) == len(serials)
    for change in history:  # R156: before and after, per ECU, from the car's signed manifests
        assert change["before"]["activation_counter"] == 0
        assert change["after"]["activation_counter"] == 1
        assert change["change_ref"] and not change["offline"]
    assert any(h["after"]["images"] != h["before"]["images"] for h in history)
    capture = stack.consent(vehicle)
    assert len(consents) == len(capture.record.choices) + 1  # every category and cross-border
    assert {c["notice_version"] for c in consents} == {capture.record.notice_version}
    assert {c["choice"] for c in consents} == {"granted"}
    assert all(c["propagation"] == {"cloud": "complete", "car": "complete", "crm": "pending"}
               for c in consents)  # fmt: skip
