"""Entitlements (purchase at the dealer, suspend, renew, revoke), profiles and packages."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from forecourt.core import to_json
from forecourt.store.registry import AuditRow
from tests.cloud.conftest import Clients
from tests.cloud.world import MANAGER as MANAGER_ID
from tests.cloud.world import OPERATOR, CloudWorld, edge_name

MANAGER = {"operator_id": MANAGER_ID, "role": "service_manager"}


def _buyable(world: CloudWorld) -> tuple[str, str, str]:
    """(dealer, VIN, feature) for a feature the car lacks, offered in its market."""
    car, _ = world.activatable()
    owned = {e.feature_code for e in world.demo.entitlements if e.vin == car.vin}
    for feature in world.demo.catalog.features:
        if feature.code not in owned and feature.offer(car.market) is not None:
            return car.dealer_id or "", str(car.vin), feature.code
    raise AssertionError("nothing left to buy")


def test_purchase_at_the_dealer_is_active_at_once_and_idempotent(
    world: CloudWorld, clients: Clients
) -> None:
    dealer, vin, code = _buyable(world)
    edge = clients.dealer(dealer)
    order = {"vin": vin, "feature_code": code, "reference": "order-0001", "operator": MANAGER}
    first = edge.post("/v1/entitlements/purchases", json=order)
    again = edge.post("/v1/entitlements/purchases", json=order)
    assert first.status_code == 201 and first.json()["state"] == "active"
    assert again.json()["entitlement_id"] == first.json()["entitlement_id"]
    listed = clients.staff().get(f"/v1/vehicles/{vin}/entitlements").json()
    mine = [e for e in listed if e["id"] == first.json()["entitlement_id"]]
    assert mine[0]["state"] == "active" and mine[0]["feature_code"] == code


def test_purchase_of_unknown_feature_or_foreign_car_is_refused(
    world: CloudWorld, clients: Clients
) -> None:
    dealer, vin, _code = _buyable(world)
    edge = clients.dealer(dealer)
    unknown = edge.post(
        "/v1/entitlements/purchases",
        json={"vin": vin, "feature_code": "NOPE", "reference": "ref-0001", "operator": MANAGER},
    )
    assert unknown.json()["code"] == "feature_unknown"
    other = next(d.dealer_id for d in world.demo.dealers if d.dealer_id != dealer)
    foreign = clients.dealer(other).post(
        "/v1/entitlements/purchases",
        json={"vin": vin, "feature_code": "NAV", "reference": "ref-0002", "operator": MANAGER},
    )
    assert foreign.status_code == 403


def test_suspend_resume_renew_revoke(world: CloudWorld, clients: Clients) -> None:
    dealer, vin, code = _buyable(world)
    made = clients.dealer(dealer).post(
        "/v1/entitlements/purchases",
        json={
            "vin": vin,
            "feature_code": code,
            "reference": "trial-0001",
            "trial": True,
            "operator": MANAGER,
        },
    )
    ident = made.json()["entitlement_id"]
    staff = clients.staff()
    assert (
        staff.post(f"/v1/entitlements/{ident}/state", json={"action": "suspend"}).json()["state"]
        == "suspended"
    )
    twice = staff.post(f"/v1/entitlements/{ident}/state", json={"action": "suspend"})
    assert twice.status_code == 409
    assert twice.json()["code"] == "entitlement_transition_not_allowed"
    assert staff.post(f"/v1/entitlements/{ident}/state", json={"action": "resume"}).is_success
    before = staff.get(f"/v1/vehicles/{vin}/entitlements").json()
    until = next(e for e in before if e["id"] == ident)["valid_until"]
    renewed = staff.post(f"/v1/entitlements/{ident}/renewal", json={"days": 30}).json()
    assert renewed["valid_until"] > until
    assert staff.post(f"/v1/entitlements/{ident}/state", json={"action": "revoke"}).is_success
    final = staff.post(f"/v1/entitlements/{ident}/state", json={"action": "resume"})
    assert final.status_code == 409
    assert (
        staff.post("/v1/entitlements/999999/state", json={"action": "revoke"}).json()["code"]
        == "entitlement_unknown"
    )


def test_profiles_are_versioned_and_chosen_by_dealer_location(
    world: CloudWorld, clients: Clients
) -> None:
    staff = clients.staff()
    eu = world.demo.profile(world.demo.dealers[0].market)
    newer = {**to_json(eu), "notice_version": "eu-2026.1"}  # type: ignore[dict-item]
    published = staff.post("/v1/compliance-profiles", json=newer)
    assert published.status_code == 201 and published.json()["version"] == 2
    current = clients.dealer("FR-PAR-01").get("/v1/dealer/compliance-profile").json()
    assert current["version"] == 2 and current["profile"]["notice_version"] == "eu-2026.1"
    us = clients.dealer("US-SFO-01").get("/v1/dealer/compliance-profile").json()
    assert us["profile"]["market"] == "US"
    bad = staff.post("/v1/compliance-profiles", json={**newer, "retention_days": 0})
    assert bad.json()["code"] == "validation_failed"


def test_package_upload_publish_and_ranged_download(world: CloudWorld, clients: Clients) -> None:
    staff = clients.staff()
    blob = bytes(range(256)) * 64
    digest = hashlib.sha256(blob).hexdigest()
    package = to_json(world.demo.catalog.packages[0])
    assert isinstance(package, dict)
    package.update({"version": "99.0.0", "sha256": digest, "size": len(blob)})
    missing = staff.put("/v1/catalog/packages", json=package)
    assert missing.status_code == 409 and missing.json()["code"] == "package_blob_missing"
    assert staff.put(f"/v1/packages/{digest}", content=blob).status_code == 201
    assert staff.put("/v1/catalog/packages", json=package).is_success
    edge = clients.dealer("DE-MUC-01")
    part = edge.get(f"/v1/packages/{digest}", headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == blob[100:200]
    refused = edge.put(f"/v1/packages/{digest}", content=blob)
    assert refused.status_code == 401 and refused.json()["code"] == "token_required"
    targets = edge.get("/v1/images/targets").json()
    assert targets["targets"]["signed"]["_type"] == "targets"


def test_purchase_needs_a_confirmed_manager_registered_by_the_calling_edge(
    world: CloudWorld, clients: Clients
) -> None:
    dealer, vin, code = _buyable(world)
    edge = clients.dealer(dealer)
    order = {"vin": vin, "feature_code": code, "reference": "order-0101"}
    missing = edge.post("/v1/entitlements/purchases", json=order)
    assert missing.status_code == 422
    technician = {"operator_id": OPERATOR, "role": "technician"}
    by_technician = edge.post("/v1/entitlements/purchases", json={**order, "operator": technician})
    assert by_technician.json()["code"] == "operator_not_permitted"
    pushed = [
        {"operator_id": OPERATOR, "role": "technician"},
        {"operator_id": MANAGER_ID, "role": "service_manager"},
        {"operator_id": "op-self-made", "role": "dealer_admin"},
    ]
    assert edge.put("/v1/dealer/operators", json={"operators": pushed}).is_success
    self_made = {"operator_id": "op-self-made", "role": "dealer_admin"}
    unconfirmed = edge.post("/v1/entitlements/purchases", json={**order, "operator": self_made})
    assert unconfirmed.json()["code"] == "operator_not_permitted"
    assert "operator_role_unconfirmed" in unconfirmed.json()["detail"]
    other_cert = world.pki.issue_dealer(dealer, "edge-other", now=world.config.clock())
    elsewhere = clients.dealer(dealer, other_cert).post(
        "/v1/entitlements/purchases", json={**order, "operator": MANAGER}
    )
    assert elsewhere.json()["code"] == "operator_not_permitted"
    bought = edge.post("/v1/entitlements/purchases", json={**order, "operator": MANAGER})
    assert bought.status_code == 201, bought.text
    with world.context.db.sessions() as session:
        audit = session.scalars(
            select(AuditRow).where(AuditRow.subject == str(bought.json()["entitlement_id"]))
        ).one()
    assert (audit.action, audit.edge, audit.detail["operator_id"]) == (
        "entitlement_purchased",
        edge_name(dealer),
        MANAGER_ID,
    )


def test_a_dealers_reference_never_finds_another_dealers_entitlement(
    world: CloudWorld, clients: Clients
) -> None:
    dealer, vin, code = _buyable(world)
    order = {"vin": vin, "feature_code": code, "reference": "order-0202", "operator": MANAGER}
    first = clients.dealer(dealer).post("/v1/entitlements/purchases", json=order)
    assert first.status_code == 201
    other_car = next(
        c
        for c in world.demo.vehicles
        if c.dealer_id not in (None, dealer) and c.state.value == "at_dealer"
    )
    other_order = {**order, "vin": str(other_car.vin)}
    other = clients.dealer(other_car.dealer_id or "").post(
        "/v1/entitlements/purchases", json=other_order
    )
    assert other.status_code == 201, other.text
    assert other.json().get("entitlement_id") != first.json()["entitlement_id"]


def test_one_trial_per_vin_and_feature_ever(world: CloudWorld, clients: Clients) -> None:
    dealer, vin, code = _buyable(world)
    edge = clients.dealer(dealer)
    trial = {"vin": vin, "feature_code": code, "trial": True, "operator": MANAGER}
    first = edge.post("/v1/entitlements/purchases", json={**trial, "reference": "trial-0301"})
    assert first.status_code == 201
    retried = edge.post("/v1/entitlements/purchases", json={**trial, "reference": "trial-0301"})
    assert retried.json()["entitlement_id"] == first.json()["entitlement_id"]
    again = edge.post("/v1/entitlements/purchases", json={**trial, "reference": "trial-0302"})
    assert again.status_code == 409
    assert again.json()["code"] == "trial_already_used"
    ident = first.json()["entitlement_id"]
    staff = clients.staff()
    assert staff.post(f"/v1/entitlements/{ident}/state", json={"action": "revoke"}).is_success
    after_revoke = edge.post(
        "/v1/entitlements/purchases", json={**trial, "reference": "trial-0303"}
    )
    assert after_revoke.json()["code"] == "trial_already_used"
