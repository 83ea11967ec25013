"""A transfer cut by the car's fault injection resumes from the confirmed byte; PostgreSQL cloud."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forecourt.edge.link.doip import LinkConfig
from forecourt.edge.wiring import start_edge
from forecourt.edge.workflow import WorkflowState
from forecourt.vehicle.faults import FaultPlan
from tests.e2e.checks import cloud_activation, ledger_is_whole
from tests.e2e.world import CloudStack, cloud_stack, hire

BLOCK = 64 * 1024


def _activate(stack: CloudStack, tmp_path: Path, faults: FaultPlan | None = None) -> None:
    vehicle = stack.activatable(exclude={c.vin for c in stack.cars})
    car = stack.start_car(vehicle, faults)
    assert vehicle.dealer_id is not None
    settings = stack.edge_settings(
        vehicle.dealer_id, tmp_path / "edge", link=LinkConfig(max_block_data=BLOCK)
    )
    stack.register_edge_log(settings)
    with start_edge(settings) as edge:
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
        edge.sync_now()
        ledger_is_whole(edge)
        receipts = list(edge.connector.receipts)
    assert car.car.state.activation_counter == 1
    assert cloud_activation(stack, car.vin) == [("applied", vehicle.dealer_id)]
    if faults is not None:
        cut = [r for r in receipts if r.resumed_from]
        assert len(cut) == 1  # one cut, one resumption, and the file completed
        [receipt] = cut
        assert 0 < receipt.resumed_from[0] < receipt.size
        # only the block in flight at the cut is sent twice: no confirmed block is resent
        assert receipt.size < receipt.bytes_sent <= receipt.size + receipt.block_size


def test_a_transfer_cut_by_the_car_resumes_without_resending_confirmed_blocks(
    stack: CloudStack, tmp_path: Path
) -> None:
    _activate(stack, tmp_path, FaultPlan(drop_after_blocks=6))


@pytest.fixture
def pg_stack(pg_url: str, tmp_path: Path) -> Iterator[CloudStack]:
    with cloud_stack(pg_url, tmp_path / "cloud") as built:
        yield built


def test_the_whole_path_runs_against_a_cloud_on_postgresql(
    pg_stack: CloudStack, tmp_path: Path
) -> None:
    _activate(pg_stack, tmp_path)
