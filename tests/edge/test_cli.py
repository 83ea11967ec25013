"""``forecourt activate`` and ``forecourt edge status`` against a running local deployment, over
the console API (login with password + TOTP, CSRF, the same permission checks as a browser)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.demo.deployment import DeploymentOptions, LocalDeployment, start_deployment
from forecourt.demo.run import write_fleet
from forecourt.edge.cli import CliProblem, read_vins
from forecourt.edge.operators import ReviewState
from forecourt.edge.workflow import WorkflowState

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    options = DeploymentOptions(
        data_dir=tmp_path_factory.mktemp("edge-cli"),
        cars=4,
        cloud_port=0,
        edge_port=0,
        address_base=random.SystemRandom().randrange(100, 250),
    )
    with start_deployment(options) as running:
        write_fleet(running)
        yield running


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_activate_follows_every_step_and_exits_zero_once_the_car_is_activated(
    deployment: LocalDeployment,
) -> None:
    car = deployment.fleet[0]
    code, out = run("activate", car.vin, "--local", str(deployment.options.data_dir))
    assert code == 0, out
    for step in ("Connected to the car", "Identified", "Authorised", "Transferring", "Verified"):
        assert step in out
    assert f"{car.vin} activated" in out
    assert car.state == "activated"


def test_a_refused_activation_exits_3_and_prints_the_clouds_codes(
    deployment: LocalDeployment,
) -> None:
    car = deployment.fleet[1]
    not_bought = next(
        f.code
        for f in deployment.world.catalog.features
        if f.code not in car.features and not f.standard_in(car.vehicle.market)
        and f.offer(car.vehicle.market) is not None
    )  # fmt: skip
    code, out = run(
        "activate", car.vin, "--features", not_bought, "--local", str(deployment.options.data_dir)
    )
    assert code == 3, out
    assert "refused: cloud_refused" in out
    assert "activation_refused" in out
    assert "not_entitled" in out
    assert car.state == "asleep"  # a refusal changes nothing in the car


def test_activating_an_activated_car_again_waits_for_a_second_operators_review(
    deployment: LocalDeployment,
) -> None:
    car = deployment.fleet[2]
    first = deployment.edge.activations.wait(deployment.start_activation(car.vin), timeout=60)
    assert first.state is WorkflowState.DONE
    code, out = run("activate", car.vin, "--local", str(deployment.options.data_dir))
    assert code == 4, out
    assert "waits for a second operator's review" in out
    assert UUID.search(out)


def test_a_batch_creates_one_review_for_all_cars_and_prints_its_id(
    deployment: LocalDeployment, tmp_path: Path
) -> None:
    cars = deployment.fleet[1], deployment.fleet[3]
    common = sorted(set(cars[0].features) & set(cars[1].features)) or [cars[0].features[0]]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"vins": [c.vin for c in cars]}))
    code, out = run(
        "activate", "--batch", str(batch), "--features", common[0],
        "--local", str(deployment.options.data_dir),
    )  # fmt: skip
    assert code == 0, out
    review_id = re.search(r"review id: (\S+)", out)
    assert review_id is not None, out
    senior = deployment.operator("senior")
    pending = deployment.edge.reviews.list_for_dealer(
        senior, deployment.options.dealer_id, ReviewState.PENDING
    )
    assert review_id.group(1) in {r.id for r in pending}
    assert {c.state for c in cars} == {"asleep"}  # nothing runs before the second operator


def test_edge_status_prints_every_check_in_a_table(deployment: LocalDeployment) -> None:
    code, out = run("edge", "status", "--local", str(deployment.options.data_dir))
    assert code == 0, out
    for check in ("database", "ledger", "outbox", "offline_stock", "package_cache", "cloud",
                  "certificates", "disk"):  # fmt: skip
        assert check in out
    assert "clock skew" in out


def test_an_unknown_vin_is_refused_by_the_edge_with_its_code(deployment: LocalDeployment) -> None:
    code, out = run(
        "activate", "WVWZZZ1JZXW000001", "--features", "NAV",
        "--local", str(deployment.options.data_dir),
    )  # fmt: skip
    assert code == 3, out
    assert "vehicle_unknown" in out


def test_activate_without_saying_where_the_edge_is_is_a_usage_error() -> None:
    code, out = run("activate", "WVWZZZ1JZXW000001", "--features", "NAV")
    assert code == 2
    assert "--edge URL or --local DATA_DIR" in out


def test_a_missing_edge_directory_exits_5(tmp_path: Path) -> None:
    code, out = run("activate", "WVWZZZ1JZXW000001", "--features", "NAV", "--local", str(tmp_path))
    assert code == 5
    assert "no edge endpoint" in out


def test_batch_files_are_read_as_csv_with_a_header_or_json(tmp_path: Path) -> None:
    csv_file = tmp_path / "cars.csv"
    csv_file.write_text("vin,note\nWVWZZZ1JZXW000001,a\nwvwzzz1jzxw000003,b\n")
    assert read_vins(csv_file) == ["WVWZZZ1JZXW000001", "WVWZZZ1JZXW000003"]
    json_file = tmp_path / "cars.json"
    json_file.write_text(json.dumps(["WVWZZZ1JZXW000001", {"vin": "WVWZZZ1JZXW000003"}]))
    assert read_vins(json_file) == ["WVWZZZ1JZXW000001", "WVWZZZ1JZXW000003"]


def test_a_batch_file_with_a_bad_vin_is_refused_naming_it(tmp_path: Path) -> None:
    csv_file = tmp_path / "cars.csv"
    csv_file.write_text("WVWZZZ1JZXW000001\nNOT-A-VIN\n")
    with pytest.raises(CliProblem, match="NOT-A-VIN"):
        read_vins(csv_file)
