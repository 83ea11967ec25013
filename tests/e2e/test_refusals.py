"""Refused cars end refused with the cloud's exact codes, the car untouched, the ledger whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecourt.core import Vehicle
from forecourt.edge.operators import ReviewKind
from forecourt.edge.wiring import start_edge
from forecourt.edge.workflow import WorkflowState
from tests.e2e.checks import ledger_is_whole, steps
from tests.e2e.world import CloudStack, hire

SAME_MARKET = {
    "DE-MUC-01": "FR-PAR-01",
    "FR-PAR-01": "DE-MUC-01",
    "CN-SHA-01": "CN-SZX-01",
    "CN-SZX-01": "CN-SHA-01",
    "US-SFO-01": "US-DTW-01",
    "US-DTW-01": "US-SFO-01",
}


def _refusal_codes(edge_steps: list) -> list[str]:  # type: ignore[type-arg]
    last = edge_steps[-1]
    assert last.to_state is WorkflowState.REFUSED
    return sorted(last.evidence["step"]["codes"])


@pytest.mark.parametrize(
    ("code", "ecus", "with_consent"),
    [
        ("hardware_missing", 3, True),  # an ADAS feature on a car without the ADAS controller
        ("not_entitled", None, True),
        ("consent_missing", None, False),
    ],
)
def test_the_cloud_refuses_with_the_exact_codes_and_the_car_stays_as_it_was(
    stack: CloudStack, tmp_path: Path, code: str, ecus: int | None, with_consent: bool
) -> None:
    vehicle: Vehicle
    vehicle, features, planned = stack.refused_with(code, consent=with_consent, ecus=ecus)
    car = stack.car_for(vehicle)
    counter = car.car.state.activation_counter
    assert vehicle.dealer_id is not None
    settings = stack.edge_settings(vehicle.dealer_id, tmp_path / "edge")
    with start_edge(settings) as edge:
        people = hire(edge)
        edge.sync_operators()
        wf = edge.activations.start(
            people.technician.operator,
            vin=car.vin,
            features=features,
            consent=stack.consent(vehicle) if with_consent else None,
        )
        record = edge.activations.wait(wf, timeout=60)
        assert (record.state, record.error_code) == (WorkflowState.REFUSED, "cloud_refused")
        assert _refusal_codes(steps(edge, wf)) == sorted(["activation_refused", *planned])
        assert code in planned
        ledger_is_whole(edge)
    assert car.car.state.activation_counter == counter  # not a byte reached the car


def test_a_foreign_dealers_car_needs_a_review_and_is_then_refused_by_the_cloud(
    stack: CloudStack, tmp_path: Path
) -> None:
    vehicle = stack.activatable()
    car = stack.car_for(vehicle)
    assert vehicle.dealer_id is not None
    foreign = SAME_MARKET[vehicle.dealer_id]
    settings = stack.edge_settings(foreign, tmp_path / "edge")
    with start_edge(settings) as edge:
        people = hire(edge)
        edge.sync_operators()
        wf = edge.activations.start(
            people.technician.operator,
            vin=car.vin,
            features=stack.bought(vehicle),
            consent=stack.consent(vehicle),
        )
        waiting = edge.activations.wait(wf, timeout=60)
        assert waiting.state is WorkflowState.AWAITING_REVIEW
        review = waiting.context["reviews"][ReviewKind.FOREIGN_VEHICLE.value]["id"]
        edge.reviews.approve(people.manager.operator, review, people.manager.code())
        edge.activations.review_decided(wf)
        record = edge.activations.wait(wf, timeout=60)
        assert (record.state, record.error_code) == (WorkflowState.REFUSED, "cloud_refused")
        assert _refusal_codes(steps(edge, wf)) == ["activation_refused", "dealer_not_assigned"]
        ledger_is_whole(edge)
    assert car.car.state.activation_counter == 0
