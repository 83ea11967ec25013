"""Registry over HTTP: factory feed import (CSV and JSON), assignment, ownership, lifecycle."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from forecourt.core import to_json
from forecourt.demo.data import generate_world
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld


def _fresh_cars(count: int) -> list[dict[str, Any]]:
    """Cars not yet in the registry (another seed), assigned to no dealer."""
    cars = generate_world(seed=99, vehicles=count, reference_time=NOW).vehicles
    out = []
    for car in cars:
        data = to_json(car)
        assert isinstance(data, dict)
        data.update({"dealer_id": None, "state": "built"})
        out.append(data)
    return out


def test_json_feed_import_is_idempotent_with_a_row_error_report(clients: Clients) -> None:
    staff = clients.staff()
    rows = _fresh_cars(3)
    bad = {**rows[0], "vin": "WFKTW3S88RM00000I"}  # I is not a VIN character
    feed = [*rows, bad, {"vin": 7}]
    first = staff.post("/v1/vehicles/import", json=feed)
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["created"], report["unchanged"], report["failed"]) == (3, 0, 2)
    assert [e["row"] for e in report["errors"]] == [4, 5]
    again = staff.post("/v1/vehicles/import", json=feed).json()
    assert (again["created"], again["unchanged"], again["failed"]) == (0, 3, 2)


def test_changed_factory_record_is_refused_and_the_stored_car_kept(clients: Clients) -> None:
    staff = clients.staff()
    row = _fresh_cars(1)[0]
    staff.post("/v1/vehicles/import", json=[row])
    changed = {**row, "plant": "ELSEWHERE"}
    report = staff.post("/v1/vehicles/import", json=[changed]).json()
    assert report["failed"] == 1 and "different factory record" in report["errors"][0]["error"]
    assert staff.get(f"/v1/vehicles/{row['vin']}").json()["plant"] == row["plant"]


def test_csv_feed_imports_with_ecus_as_json(clients: Clients) -> None:
    rows = _fresh_cars(2)
    buffer = io.StringIO()
    fields = ["vin", "model", "model_year", "plant", "build_date", "market", "option_codes", "ecus"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **{k: row[k] for k in fields[:6]},
                "option_codes": " ".join(row["option_codes"]),
                "ecus": json.dumps(row["ecus"]),
            }
        )
    response = clients.staff().post(
        "/v1/vehicles/import", content=buffer.getvalue(), headers={"content-type": "text/csv"}
    )
    assert response.json()["created"] == 2


def test_unreadable_feed_is_import_format_invalid(clients: Clients) -> None:
    response = clients.staff().post(
        "/v1/vehicles/import", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "import_format_invalid"


def test_assignment_ownership_and_lifecycle(world: CloudWorld, clients: Clients) -> None:
    staff = clients.staff()
    row = _fresh_cars(1)[0]
    staff.post("/v1/vehicles/import", json=[row])
    vin = row["vin"]
    assert staff.put(f"/v1/vehicles/{vin}/dealer", json={"dealer_id": "DE-MUC-01"}).is_success
    assert staff.put(f"/v1/vehicles/{vin}/owner", json={"owner_ref": "crm-42"}).is_success
    assert staff.put(f"/v1/vehicles/{vin}/state", json={"state": "shipped"}).is_success
    illegal = staff.put(f"/v1/vehicles/{vin}/state", json={"state": "delivered"})
    assert illegal.status_code == 409
    car = staff.get(f"/v1/vehicles/{vin}").json()
    assert (car["dealer_id"], car["owner_ref"], car["state"]) == ("DE-MUC-01", "crm-42", "shipped")
    unknown = staff.put(f"/v1/vehicles/{vin}/dealer", json={"dealer_id": "XX-NOPE-01"})
    assert unknown.json()["code"] == "dealer_unknown"
    assert staff.get("/v1/vehicles/WFKTW3S80RM999999").json()["code"] == "vehicle_unknown"


def test_dealer_operator_sync_decides_who_may_activate(world: CloudWorld, clients: Clients) -> None:
    car, features = world.activatable()
    edge = clients.dealer(car.dealer_id or "")
    synced = edge.put(
        "/v1/dealer/operators", json={"operators": [{"operator_id": "op-new", "role": "auditor"}]}
    )
    assert synced.json()["operators"] == 1
    refused = edge.post("/v1/activations", json=world.request(car, features))
    assert {r["code"] for r in refused.json()["reasons"]} == {"operator_unknown"}
    wrong_role = edge.put(
        "/v1/dealer/operators", json={"operators": [{"operator_id": "x", "role": "king"}]}
    )
    assert wrong_role.status_code == 422


def test_assignment_of_another_dealers_car_is_answered_like_an_unknown_vin(
    world: CloudWorld, clients: Clients
) -> None:
    car, _features = world.activatable()
    other = next(d.dealer_id for d in world.demo.dealers if d.dealer_id != car.dealer_id)
    edge = clients.dealer(other)
    foreign = edge.get(f"/v1/vehicles/{car.vin}/assignment")
    unknown = edge.get("/v1/vehicles/WFKTW3S80RM999999/assignment")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["code"] == unknown.json()["code"] == "vehicle_unknown"
    assert "activations" not in foreign.json()
    mine = clients.dealer(car.dealer_id or "").get(f"/v1/vehicles/{car.vin}/assignment")
    assert mine.json()["assigned_to_caller"] is True
