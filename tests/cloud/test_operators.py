"""Operators are registered per edge: one edge can neither erase nor lend another's operators,
every change is audited with the edge's certificate serial, elevated roles wait for OEM staff."""

from __future__ import annotations

from sqlalchemy import select

from forecourt.store.registry import AuditRow
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, OPERATOR, CloudWorld, edge_name


def test_a_second_edge_of_the_dealer_neither_erases_nor_borrows_the_first_edges_operators(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    dealer_id = car.dealer_id or ""
    second_cert = world.pki.issue_dealer(dealer_id, "edge-second", now=NOW)
    second = clients.dealer(dealer_id, second_cert)
    pushed = second.put(
        "/v1/dealer/operators",
        json={"operators": [{"operator_id": "op-bob", "role": "technician"}]},
    )
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["added"] == ["op-bob"]
    assert pushed.json()["removed"] == []
    borrowed = second.post("/v1/activations", json=world.request(car, features))
    assert {r["code"] for r in borrowed.json()["reasons"]} == {"operator_unknown"}
    first = clients.dealer(dealer_id)
    issued = first.post("/v1/activations", json=world.request(car, features))
    assert issued.status_code == 201, issued.text  # the first edge's operator is still there


def test_every_operator_change_is_audited_with_the_edge_certificate_serial(
    world: CloudWorld, clients: Clients
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    edge = clients.dealer(dealer_id)
    answer = edge.put(
        "/v1/dealer/operators",
        json={
            "operators": [
                {"operator_id": OPERATOR, "role": "senior_technician"},
                {"operator_id": "op-new", "role": "technician"},
            ]
        },
    ).json()
    assert answer["added"] == ["op-new"]
    assert answer["role_changed"] == [OPERATOR]
    assert "op-otto" in answer["removed"]
    assert answer["unconfirmed"] == [OPERATOR]
    serial = format(world.dealer_certs[dealer_id].cert.serial_number, "x")
    with world.context.db.sessions() as session:
        rows = session.scalars(
            select(AuditRow).where(AuditRow.actor == f"edge:{serial}").order_by(AuditRow.id)
        ).all()
        seen = {(r.action, r.subject, r.edge) for r in rows}
    assert ("operator_added", "op-new", edge_name(dealer_id)) in seen
    assert ("operator_removed", "op-otto", edge_name(dealer_id)) in seen
    assert ("operator_role_changed", OPERATOR, edge_name(dealer_id)) in seen


def test_elevated_role_needs_staff_confirmation_and_lapses_when_the_edge_changes_it(
    world: CloudWorld, clients: Clients
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    edge = clients.dealer(dealer_id)
    mine = [{"operator_id": "op-max", "role": "dealer_admin"}]
    assert edge.put("/v1/dealer/operators", json={"operators": mine}).json()["unconfirmed"] == [
        "op-max"
    ]
    url = f"/v1/dealers/{dealer_id}/edges/{edge_name(dealer_id)}/operators/op-max/confirmation"
    assert edge.put(url, json={"role": "dealer_admin"}).status_code == 401  # no staff token
    staff = clients.staff()
    assert staff.put(url, json={"role": "service_manager"}).status_code == 409  # not claimed
    assert staff.put(url, json={"role": "dealer_admin"}).status_code == 200
    assert edge.put("/v1/dealer/operators", json={"operators": mine}).json()["unconfirmed"] == []
    lowered = [{"operator_id": "op-max", "role": "service_manager"}]
    answer = edge.put("/v1/dealer/operators", json={"operators": lowered}).json()
    assert answer["unconfirmed"] == ["op-max"]
