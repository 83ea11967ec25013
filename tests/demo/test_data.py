"""Demo world: deterministic from its seed, internally consistent, usable for activation."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.core import (
    ActivationPlan,
    ConsentChoice,
    ConsentRecord,
    DataCategory,
    EcuRole,
    LifecycleState,
    Market,
    Vin,
    from_dict,
    plan_activation,
)
from forecourt.demo.data import DemoWorld, ecu_private_keys, generate_world, package_content


def _dump(world: DemoWorld) -> str:
    return json.dumps(world.to_json(), sort_keys=True)


def test_same_seed_gives_identical_data_and_another_seed_differs() -> None:
    assert generate_world(seed=11, vehicles=25) == generate_world(seed=11, vehicles=25)
    assert _dump(generate_world(seed=11, vehicles=25)) == _dump(
        generate_world(seed=11, vehicles=25)
    )
    assert _dump(generate_world(seed=12, vehicles=25)) != _dump(
        generate_world(seed=11, vehicles=25)
    )


def test_world_has_the_promised_breadth() -> None:
    world = generate_world(seed=1, vehicles=30)
    assert len(world.models) >= 4 and len(world.catalog.features) >= 12
    assert {p.market for p in world.profiles} == set(Market)
    assert len({d.market for d in world.dealers}) == 3 and len(world.dealers) >= 3
    assert len(world.vehicles) == 30
    assert {e.source.value for e in world.entitlements} >= {"standard", "purchase", "trial"}


def test_every_vin_is_valid_and_us_cars_carry_a_correct_check_digit() -> None:
    world = generate_world(seed=2, vehicles=60)
    assert len({v.vin for v in world.vehicles}) == 60
    for car in world.vehicles:
        assert Vin.parse(car.vin.value) == car.vin
        assert car.vin.model_year == car.model_year
        if car.market is Market.US:
            assert car.vin.check_digit_mandatory and car.vin.check_digit_valid


def test_adas_ecu_is_fitted_only_with_the_adas_option() -> None:
    for car in generate_world(seed=3, vehicles=60).vehicles:
        assert (EcuRole.ADAS in car.roles) == ("ADS" in car.option_codes)
        assert {EcuRole.CGW, EcuRole.TBOX, EcuRole.HEAD_UNIT} <= car.roles


def test_ecu_keys_and_package_digests_can_be_reproduced() -> None:
    world = generate_world(seed=4, vehicles=3)
    car = world.vehicles[0]
    for ecu in car.ecus:
        signing, sealing = ecu_private_keys(world.seed, car.vin.value, ecu.role)
        raw = (Encoding.Raw, PublicFormat.Raw)
        assert signing.public_key().public_bytes(*raw) == ecu.signing_public_key
        assert sealing.public_key().public_bytes(*raw) == ecu.sealing_public_key
    for package in world.catalog.packages[:5]:
        content = package_content(package.name, str(package.version), package.size)
        assert hashlib.sha256(content).hexdigest() == package.sha256


def test_world_round_trips_through_json() -> None:
    world = generate_world(seed=5, vehicles=8)
    assert from_dict(DemoWorld, json.loads(_dump(world))) == world


def test_cars_at_a_dealer_can_be_activated_with_full_consent() -> None:
    world = generate_world(seed=6, vehicles=40)
    outcomes: Counter[str] = Counter()
    for car in world.vehicles:
        if car.state is not LifecycleState.AT_DEALER:
            continue
        rules = world.profile(car.market)
        consent = ConsentRecord(
            rules.notice_version,
            world.reference_time,
            tuple(ConsentChoice(c, granted=True) for c in DataCategory),
            cross_border=True,
        )
        result = plan_activation(
            car,
            catalog=world.catalog,
            entitlements=world.entitlements,
            profile=rules,
            requested=[],
            consent=consent,
            now=world.reference_time,
        )
        assert isinstance(result, ActivationPlan)
        assert {"CONNECT", "OTA"} <= set(result.features)
        outcomes[car.market.value] += 1
    assert set(outcomes) == {"EU", "CN", "US"}


def test_demo_data_command_prints_a_summary_and_writes_stable_json(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    runner = CliRunner()
    result = runner.invoke(
        app, ["demo-data", "--vehicles", "9", "--seed", "3", "--json", str(first)]
    )
    assert result.exit_code == 0, result.output
    assert "vehicles" in result.stdout and "entitlements" in result.stdout
    runner.invoke(app, ["demo-data", "--vehicles", "9", "--seed", "3", "--json", str(second)])
    assert first.read_bytes() == second.read_bytes()
    data = json.loads(first.read_text(encoding="utf-8"))
    assert len(data["vehicles"]) == 9 and data["seed"] == 3
    assert list(data) == sorted(data)


def test_demo_data_refuses_a_negative_vehicle_count() -> None:
    result = CliRunner().invoke(app, ["demo-data", "--vehicles", "-1"])
    assert result.exit_code == 2
