"""Offline packages: issued ahead for a dealer's cars, the car accepts them, double use reported."""

from __future__ import annotations

import base64
from datetime import timedelta

from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld


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
