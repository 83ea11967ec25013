"""POST /v1/activations over real HTTP with real mutual TLS, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from forecourt.core import DataCategory, LifecycleState
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle
from tests.cloud.conftest import Clients
from tests.cloud.world import AUDITOR, NOW, CloudWorld


def _codes(response_json: dict[str, object]) -> set[str]:
    return {r["code"] for r in response_json["reasons"]}  # type: ignore[index, union-attr]


def test_activation_returns_a_bundle_the_car_verifies(world: CloudWorld, clients: Clients) -> None:
    car, features = world.activatable()
    body = world.request(car, features)
    response = clients.dealer(car.dealer_id or "").post("/v1/activations", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["activation_counter"] == 1
    assert set(features) <= set(answer["features"])
    roots = world.context.signer.root_bytes()
    state = CarTrustState(
        vin=str(car.vin),
        director_root=roots["director"],
        image_root=roots["image"],
        ecus=tuple(EcuTrustState(e.serial, e.hardware_number, e.role.value) for e in car.ecus),
        factory_options=car.option_codes,
        issued_nonces=frozenset({body["nonce"]}),
    )
    verified = verify_bundle(base64.b64decode(answer["bundle"]), state, NOW)
    granted = {g.feature for ecu in verified.ecus for g in ecu.features}
    assert set(features) <= granted


def test_same_request_id_replays_the_same_bundle(world: CloudWorld, clients: Clients) -> None:
    car, features = world.activatable()
    body = world.request(car, features)
    edge = clients.dealer(car.dealer_id or "")
    first = edge.post("/v1/activations", json=body)
    again = edge.post("/v1/activations", json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["bundle"] == first.json()["bundle"]


def test_reused_request_id_with_another_body_is_refused(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    body = world.request(car, features)
    edge = clients.dealer(car.dealer_id or "")
    assert edge.post("/v1/activations", json=body).status_code == 201
    response = edge.post("/v1/activations", json={**body, "features": list(features[:1])})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_reused"


def test_second_activation_while_one_is_open_is_in_progress_until_reported(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    edge = clients.dealer(car.dealer_id or "")
    first = world.request(car, features)
    assert edge.post("/v1/activations", json=first).status_code == 201
    blocked = edge.post("/v1/activations", json=world.request(car, features))
    assert blocked.status_code == 409
    assert blocked.json()["code"] == "activation_in_progress"
    report = edge.post(f"/v1/activations/{first['request_id']}/report", json={"outcome": "applied"})
    assert report.json()["status"] == "applied"
    again = edge.post("/v1/activations", json=world.request(car, features))
    assert again.status_code == 201
    assert again.json()["activation_counter"] == 2
    with world.context.db.sessions() as session:
        from forecourt.cloud.registry.vehicles import load_vehicle

        assert load_vehicle(session, str(car.vin)).state is LifecycleState.ACTIVATED


def test_unknown_vin_is_vehicle_unknown(world: CloudWorld, clients: Clients) -> None:
    car, features = world.activatable()
    body = world.request(car, features, vin="WFKTW3S80RM999999")
    response = clients.dealer(car.dealer_id or "").post("/v1/activations", json=body)
    assert response.status_code == 404
    assert response.json()["code"] == "vehicle_unknown"


def test_every_refusal_reason_is_listed_at_once(world: CloudWorld, clients: Clients) -> None:
    """Inventory, assignment, region, operator and domain reasons come back together."""
    car, features = world.activatable()
    other = next(d for d in world.demo.dealers if d.market is not car.market)
    inventory = world.request(car, features)["inventory"]
    inventory[0] = {**inventory[0], "serial": "SWAPPED-0001"}
    body = world.request(
        car,
        (*features, "NO_SUCH_FEATURE"),
        inventory=inventory,
        operator={"operator_id": "op-nobody", "role": "technician"},
        consent=None,
    )
    response = clients.dealer(other.dealer_id).post("/v1/activations", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "activation_refused"
    assert problem["type"] == "urn:forecourt:problem:activation_refused"
    assert {
        "inventory_mismatch",
        "dealer_not_assigned",
        "sales_region_mismatch",
        "operator_unknown",
        "unknown_feature",
        "profile_market_mismatch",
    } <= _codes(problem)


def test_operator_claiming_a_role_the_registry_does_not_give_is_refused(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    body = world.request(car, features, operator={"operator_id": AUDITOR, "role": "technician"})
    response = clients.dealer(car.dealer_id or "").post("/v1/activations", json=body)
    assert response.status_code == 422
    assert _codes(response.json()) == {"operator_not_permitted"}


def test_missing_entitlement_and_consent_are_refused_with_their_codes(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    with world.context.db.transaction() as session:
        from forecourt.store.registry import EntitlementRow

        for row in session.query(EntitlementRow).filter_by(vin=str(car.vin)):
            if row.source != "standard":
                row.state = "revoked"
    body = world.request(car, features, consent=None)
    response = clients.dealer(car.dealer_id or "").post("/v1/activations", json=body)
    assert response.status_code == 422
    codes = _codes(response.json())
    assert "not_entitled" in codes
    assert codes & {"consent_missing", "consent_forbidden"}


def test_refusal_is_recorded_and_replayed_without_holding_the_car(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    edge = clients.dealer(car.dealer_id or "")
    refused = world.request(car, ("NO_SUCH_FEATURE",))
    assert edge.post("/v1/activations", json=refused).status_code == 422
    replay = edge.post("/v1/activations", json=refused)
    assert replay.status_code == 422 and _codes(replay.json()) == {"unknown_feature"}
    assert edge.post("/v1/activations", json=world.request(car, features)).status_code == 201


def test_expired_open_activation_is_taken_over(world: CloudWorld, clients: Clients) -> None:
    car, features = world.activatable()
    edge = clients.dealer(car.dealer_id or "")
    assert edge.post("/v1/activations", json=world.request(car, features)).status_code == 201
    with world.context.db.transaction() as session:
        from forecourt.store.registry import ActivationRow

        for row in session.query(ActivationRow).filter_by(vin=str(car.vin)):
            row.expires_at = NOW - timedelta(seconds=1)
    taken = edge.post("/v1/activations", json=world.request(car, features))
    assert taken.status_code == 201, taken.text


def test_malformed_request_is_a_validation_problem(world: CloudWorld, clients: Clients) -> None:
    car, _features = world.activatable()
    response = clients.dealer(car.dealer_id or "").post(
        "/v1/activations",
        content=json.dumps({"vin": "short"}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


def test_consent_record_for_an_old_notice_is_consent_missing(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    body = world.request(car, features)
    body["consent"] = {**body["consent"], "notice_version": "old-notice"}
    response = clients.dealer(car.dealer_id or "").post("/v1/activations", json=body)
    if response.status_code == 201:  # no requested feature processes personal data
        assert not any(
            world.demo.catalog.feature(f).data_categories  # type: ignore[union-attr]
            for f in features
        )
    else:
        assert "consent_missing" in _codes(response.json())
    _ = DataCategory, canonical_bytes
