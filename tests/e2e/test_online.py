"""Online activation end to end: real cloud over mTLS, a real edge, a simulated car over DoIP."""

from __future__ import annotations

from pathlib import Path

from forecourt.edge.wiring import start_edge
from forecourt.edge.workflow import WorkflowState
from tests.e2e.checks import cloud_activation, cloud_vehicle_state, ledger_is_whole, steps
from tests.e2e.world import CloudStack, hire


def test_adas_car_is_activated_on_all_four_ecus_with_a_verified_manifest_and_a_dossier(
    stack: CloudStack, tmp_path: Path
) -> None:
    vehicle = stack.activatable(ecus=4)
    car = stack.start_car(vehicle)
    assert vehicle.dealer_id is not None
    settings = stack.edge_settings(vehicle.dealer_id, tmp_path / "edge")
    stack.register_edge_log(settings)
    features = stack.bought(vehicle)
    with start_edge(settings) as edge:
        people = hire(edge)
        assert edge.sync_operators()
        wf = edge.activations.start(
            people.technician.operator,
            vin=car.vin,
            features=features,
            consent=stack.consent(vehicle),
        )
        record = edge.activations.wait(wf, timeout=60)
        assert record.state is WorkflowState.DONE, (record.error_code, record.error_detail)
        verified = next(s for s in steps(edge, wf) if s.to_state is WorkflowState.VERIFIED)
        manifest = verified.evidence["step"]["manifest"]
        assert len(manifest["report_counters"]) == 4  # every ECU reported, each under its key
        assert manifest["activation_counter"] == 1
        report = edge.sync_now()
        assert report.dead == 0 and report.retried == 0
        ledger_is_whole(edge)
        assert edge.audit.receipts(edge.sessions)  # the edge log is anchored in the cloud's
    assert car.car.state.activation_counter == 1
    active = {f.feature_id for f in car.car.state.features}
    assert set(features) <= active
    assert cloud_activation(stack, car.vin) == [("applied", vehicle.dealer_id)]
    assert cloud_vehicle_state(stack, car.vin) == "activated"
