"""The local deployment (what ``forecourt demo`` runs) starts, activates a car end to end over
real sockets, and a second start reuses the data directory."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.demo.deployment import DeploymentOptions, LocalDeployment, start_deployment
from forecourt.edge.app.directory import DoipVehicleDirectory
from forecourt.edge.workflow import WorkflowState
from forecourt.store.registry import VehicleRow


def address_base() -> int:
    return random.SystemRandom().randrange(100, 250)


def options(data_dir: Path, cars: int = 2) -> DeploymentOptions:
    return DeploymentOptions(
        data_dir=data_dir, cars=cars, cloud_port=0, edge_port=0, address_base=address_base()
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    with start_deployment(options(tmp_path_factory.mktemp("demo"))) as running:
        yield running


def test_every_part_is_up_and_the_cars_are_asleep_and_reachable(
    deployment: LocalDeployment,
) -> None:
    assert deployment.cloud.url.startswith("https://127.0.0.1:")
    assert deployment.console_url.startswith("http://127.0.0.1:")
    assert {c.state for c in deployment.fleet} == {"asleep"}
    assert set(deployment.operators) == {"admin", "tech", "senior"}
    found = {c.vin for c in _directory(deployment).discovered()}
    assert found == {c.vin for c in deployment.fleet}


def _directory(deployment: LocalDeployment) -> DoipVehicleDirectory:
    """The console's directory: finds each car by DoIP vehicle identification."""
    return DoipVehicleDirectory([c.address for c in deployment.fleet], timeout=1.0)


def test_a_car_is_activated_end_to_end_and_the_cloud_dossier_says_so(
    deployment: LocalDeployment,
) -> None:
    car = deployment.fleet[0]
    workflow_id = deployment.start_activation(car.vin)
    record = deployment.edge.activations.wait(workflow_id, timeout=60)
    assert record.state is WorkflowState.DONE, (record.error_code, record.error_detail)
    assert car.state == "activated"
    assert car.car.state.activation_counter == 1
    report = deployment.edge.sync_now()  # the car's report reaches the cloud through the outbox
    assert report.dead == 0
    with deployment.cloud.context.db.sessions() as s:
        state = s.execute(select(VehicleRow.state).where(VehicleRow.vin == car.vin)).scalar_one()
    assert str(state) == "activated"


def test_a_second_start_on_the_same_directory_reuses_cars_operators_and_registry(
    tmp_path: Path,
) -> None:
    with start_deployment(options(tmp_path)) as first:
        car = first.fleet[0]
        record = first.edge.activations.wait(first.start_activation(car.vin), timeout=60)
        assert record.state is WorkflowState.DONE
        password = first.operators["tech"].password
    with start_deployment(options(tmp_path)) as second:
        assert second.reused
        assert second.operators["tech"].password == password
        assert second.car(car.vin).state == "activated"  # the car kept what it applied
        assert [c.vin for c in second.fleet] == [c.vin for c in first.fleet]


def test_demo_command_activates_every_car_prints_the_login_and_exits_zero(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--data-dir", str(tmp_path / "demo"),
            "--cars", "2",
            "--activate-all",
            "--exit-after",
            "--cloud-port", "0",
            "--edge-port", "0",
            "--address-base", str(address_base()),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Forecourt demo ready" in result.output
    assert "admin" in result.output and "password" in result.output
    assert "TOTP secret" in result.output
    assert result.output.count(" activated ") >= 2
    assert "2/2 cars activated" in result.output
