"""Offline packages: issued ahead for a dealer's cars, the car accepts them, double use reported."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from forecourt.cloud.catalog.service import entitlements_of
from forecourt.cloud.signing import PERPETUAL_GRANT, GrantValidityMissing
from forecourt.core import ActivationPlan, LifecycleState, Vehicle, plan_activation
from forecourt.store.registry import EntitlementRow
from forecourt.trust.model import NonceFreshness
from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld, full_consent


def test_offline_package_is_accepted_by_the_car_and_a_double_use_is_reported(
    world: CloudWorld, clients: Clients
) -> None:
    car, _features = world.activatable()
    edge = clients.dealer(car.dealer_id or "")
    issued = edge.post("/v1/offline-packages", json={"vins": [str(car.vin)]})
    assert issued.status_code == 201, issued.text
    package = issued.json()["issued"][0]
    roots = world.context.signer.root_bytes()
    state = CarTrustState(
        vin=str(car.vin),
        director_root=roots["director"],
        image_root=roots["image"],
        ecus=tuple(EcuTrustState(e.serial, e.hardware_number, e.role.value) for e in car.ecus),
        factory_options=car.option_codes,
    )
    verify_bundle(base64.b64decode(package["bundle"]), state, NOW + timedelta(minutes=5))
    use = {"use_id": "use-1", "used_at": NOW.isoformat(), "operator_id": "op-anna"}
    url = f"/v1/offline-packages/{package['package_id']}/uses"
    assert edge.post(url, json=use).json()["double_use"] is False
    assert edge.post(url, json=use).json()["double_use"] is False  # a sync retry
    second = edge.post(url, json={**use, "use_id": "use-2"}).json()
    assert second == {"package_id": package["package_id"], "uses": 2, "double_use": True}
    flagged = clients.staff().get("/v1/offline-packages/double-uses").json()
    assert [p["package_id"] for p in flagged] == [package["package_id"]]


def test_offline_packages_only_for_cars_assigned_to_the_dealer(
    world: CloudWorld, clients: Clients
) -> None:
    car, _features = world.activatable()
    other = next(d.dealer_id for d in world.demo.dealers if d.dealer_id != car.dealer_id)
    answer = clients.dealer(other).post("/v1/offline-packages", json={"vins": [str(car.vin)]})
    assert answer.json()["issued"] == []
    assert answer.json()["skipped"] == [
        {"vin": str(car.vin), "code": "offline_vehicle_not_assigned"}
    ]
    unknown = clients.dealer(other).post(
        "/v1/offline-packages/nope/uses",
        json={"use_id": "use-0001", "used_at": NOW.isoformat(), "operator_id": "x"},
    )
    assert unknown.json()["code"] == "offline_package_unknown"


def _package_grants(world: CloudWorld, car: Vehicle, bundle: str) -> dict[str, datetime]:
    roots = world.context.signer.root_bytes()
    state = CarTrustState(
        vin=str(car.vin),
        director_root=roots["director"],
        image_root=roots["image"],
        ecus=tuple(EcuTrustState(e.serial, e.hardware_number, e.role.value) for e in car.ecus),
        factory_options=car.option_codes,
    )
    verified = verify_bundle(base64.b64decode(bundle), state, NOW + timedelta(minutes=5))
    return {g.feature: g.not_after for ecu in verified.ecus for g in ecu.features}


def _car_with_consent_free_feature(world: CloudWorld) -> tuple[Vehicle, str]:
    """A car at its dealer with a bought feature that an offline package (no consent) grants."""
    for car in world.demo.vehicles:
        if car.state is not LifecycleState.AT_DEALER:
            continue
        for e in world.demo.entitlements:
            if e.vin != car.vin or e.source.value == "standard" or not e.is_active_at(NOW):
                continue
            plan = plan_activation(
                car,
                catalog=world.demo.catalog,
                entitlements=world.demo.entitlements,
                profile=world.demo.profile(car.market),
                requested={e.feature_code},
                consent=None,
                now=NOW,
            )
            if isinstance(plan, ActivationPlan):
                return car, e.feature_code
    raise AssertionError("the demo world has no feature an offline package grants")


def test_offline_grant_of_a_trial_ends_when_the_trial_ends(
    world: CloudWorld, clients: Clients
) -> None:
    car, feature = _car_with_consent_free_feature(world)
    trial_end = NOW + timedelta(days=30)
    with world.context.db.transaction() as session:
        session.execute(
            update(EntitlementRow)
            .where(EntitlementRow.vin == str(car.vin), EntitlementRow.feature_code == feature)
            .values(source="trial", valid_until=trial_end)
        )
    issued = clients.dealer(car.dealer_id or "").post(
        "/v1/offline-packages", json={"vins": [str(car.vin)]}
    )
    package = issued.json()["issued"][0]
    assert feature in package["features"]
    grants = _package_grants(world, car, package["bundle"])
    assert grants[feature] == trial_end
    assert all(until <= NOW + PERPETUAL_GRANT for until in grants.values())


def test_signing_refuses_a_feature_without_validity(world: CloudWorld) -> None:
    car, features = world.activatable()
    with world.context.db.sessions() as session:
        entitlements = [e for _i, e in entitlements_of(session, str(car.vin))]
    plan = plan_activation(
        car,
        catalog=world.demo.catalog,
        entitlements=entitlements,
        profile=world.demo.profile(car.market),
        requested=features,
        consent=full_consent(world.demo.profile(car.market).notice_version),
        now=NOW,
    )
    assert isinstance(plan, ActivationPlan)
    with pytest.raises(GrantValidityMissing) as refused:
        world.context.signer.sign(
            plan,
            car,
            freshness=NonceFreshness("n" * 32),
            activation_counter=1,
            feature_until={},
            feature_requires={},
            consent={},
            now=NOW,
            expires=NOW + timedelta(minutes=5),
        )
    assert set(features) <= refused.value.features
