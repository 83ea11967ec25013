"""The vehicle dossier: ``GET /v1/vehicles/{vin}/dossier`` over real HTTP and mutual TLS, and
``forecourt cloud dossier`` from the database, on SQLite and PostgreSQL.

A car is taken through what a dealer's edge does (offline stock, authorisation, report, synced
steps, consent and completion) and the dossier must show every part of it, in time order, with
no key or bundle bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.cloud.auth import Scope, issue_token
from forecourt.cloud.dossier.document import (
    DOSSIER_VERSION,
    DossierFacts,
    EntitlementFacts,
    LedgerRef,
    StepFacts,
    VehicleFacts,
    build_dossier,
)
from forecourt.cloud.dossier.queries import read_facts
from forecourt.cloud.sync import ACTIVATION_COMPLETED, CONSENT_RECORDED
from forecourt.cloud.sync.events import WORKFLOW_STEP
from forecourt.core import Vehicle, Vin, build_vin
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld, edge_name


def _event(
    kind: str, dealer_id: str, vin: str, at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "type": kind,
        "source": f"forecourt-edge/{edge_name(dealer_id)}",
        "subject": vin,
        "time": at.isoformat(),
        "datacontenttype": "application/json",
        "data": {"vin": vin, "dealer_id": dealer_id, **data},
    }


def _software(car: Vehicle) -> list[dict[str, Any]]:
    image = {"name": "hu-nav", "sha256": "ef" * 32, "length": 4096}
    return [
        {
            "serial": ecu.serial,
            "address": f"{ecu.logical_address:04X}",
            "before": {"software_version": ecu.software_version, "activation_counter": 0},
            "after": {
                "software_version": ecu.software_version + "+nav",
                "activation_counter": 1,
                "images": [image],
            },
        }
        for ecu in car.ecus
    ]


class Journey:
    """What the edge did with the car, kept to compare the dossier against."""

    def __init__(self, car: Vehicle, features: tuple[str, ...]) -> None:
        self.car, self.features = car, features
        self.vin = str(car.vin)
        self.dealer_id = car.dealer_id or ""
        self.issued: dict[str, Any] = {}
        self.offline: dict[str, Any] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.origin = f"{edge_name(self.dealer_id)}.forecourt.edge"


def _drive(world: CloudWorld, clients: Clients) -> Journey:
    """Offline stock issued and used twice, an edge log registered, then the online activation
    with its steps, consent, report and completion."""
    journey = Journey(*world.activatable())
    edge, staff = clients.dealer(journey.dealer_id), clients.staff()
    vkey = verifier_for(journey.origin, SoftwareNoteSigner.generate()).to_vkey()
    registered = staff.put(
        f"/v1/dealers/{journey.dealer_id}/edges/{edge_name(journey.dealer_id)}/ledger-key",
        json={"vkey": vkey},
    )
    assert registered.status_code == 200, registered.text

    stock = edge.post("/v1/offline-packages", json={"vins": [journey.vin]})
    assert stock.status_code == 201, stock.text
    journey.offline = stock.json()["issued"][0]
    for use_id in ("use-first", "use-again"):  # copied stock shown twice: a double use
        use = {"use_id": use_id, "used_at": NOW.isoformat(), "operator_id": "op-anna"}
        answer = edge.post(f"/v1/offline-packages/{journey.offline['package_id']}/uses", json=use)
        assert answer.status_code == 200, answer.text

    workflow = uuid.uuid4().hex
    step = _event(
        WORKFLOW_STEP,
        journey.dealer_id,
        journey.vin,
        NOW + timedelta(seconds=1),
        {
            "workflow_id": workflow,
            "seq": 1,
            "from": "created",
            "to": "identified",
            "status": "ok",
            "evidence_sha256": "aa" * 32,
            "ledger_index": 3,
        },
    )
    consent = _event(
        CONSENT_RECORDED,
        journey.dealer_id,
        journey.vin,
        NOW + timedelta(seconds=2),
        {
            "notice_id": "privacy-notice",
            "notice_version": "2025-01",
            "region": "eu",
            "subject_sha256": "ab" * 32,
            "captured_at": (NOW + timedelta(seconds=2)).isoformat(),
            "records": [{"record_id": uuid.uuid4().hex, "category": "location", "granted": True}],
        },
    )
    synced = edge.post("/v1/sync/events", json=[step, consent])
    assert synced.json()["accepted"] == [step["id"], consent["id"]], synced.text

    issued = edge.post("/v1/activations", json=world.request(journey.car, journey.features))
    assert issued.status_code == 201, issued.text
    journey.issued = issued.json()
    report = edge.post(
        f"/v1/activations/{journey.issued['request_id']}/report", json={"outcome": "applied"}
    )
    assert report.json()["status"] == "applied", report.text
    completed = _event(
        ACTIVATION_COMPLETED,
        journey.dealer_id,
        journey.vin,
        NOW + timedelta(seconds=3),
        {
            "workflow_id": workflow,
            "bundle_sha256": hashlib.sha256(base64.b64decode(journey.issued["bundle"])).hexdigest(),
            "features": list(journey.issued["features"]),
            "authorisation_id": journey.issued["request_id"],
            "activation_counter": journey.issued["activation_counter"],
            "software": _software(journey.car),
        },
    )
    answer = edge.post("/v1/sync/events", json=[completed])
    assert answer.json()["accepted"] == [completed["id"]], answer.text
    journey.events = {"step": step, "consent": consent, "completed": completed}
    return journey


def _dossier(clients: Clients, vin: str) -> dict[str, Any]:
    answer = clients.staff().get(f"/v1/vehicles/{vin}/dossier")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _secret_texts(world: CloudWorld, journey: Journey) -> list[str]:
    """Every encoding of the key and bundle bytes a careless dossier could leak."""
    blobs = [
        base64.b64decode(journey.issued["bundle"]),
        base64.b64decode(journey.offline["bundle"]),
    ]
    for ecu in journey.car.ecus:
        blobs += [ecu.signing_public_key, ecu.sealing_public_key]
    texts = [world.staff_token]
    for blob in blobs:
        texts += [base64.b64encode(blob).decode(), blob.hex()]
        texts += [blob.decode("latin-1")] if blob.isascii() else []  # PEM keys are text
    return [t for t in texts if len(t) >= 16]


def test_an_activated_car_shows_its_whole_journey_in_time_order(
    world: CloudWorld, clients: Clients
) -> None:
    journey = _drive(world, clients)
    document = _dossier(clients, journey.vin.lower())  # a VIN typed in lower case is the car

    assert document["dossier_version"] == DOSSIER_VERSION == 1
    assert document["vin"] == journey.vin
    car = journey.car
    assert document["factory"] | {"option_codes": set(document["factory"]["option_codes"])} == {
        "model": car.model,
        "model_year": car.model_year,
        "plant": car.plant,
        "build_date": car.build_date.isoformat(),
        "market": car.market.value,
        "option_codes": set(car.option_codes),
        "vin_check_digit_valid": True,
        "factory_record_sha256": document["factory"]["factory_record_sha256"],
    }
    assert {(e["role"], e["serial"], e["hardware_number"]) for e in document["ecus"]} == {
        (e.role.value, e.serial, e.hardware_number) for e in car.ecus
    }
    fingerprints = {e["serial"]: e["signing_key_sha256"] for e in document["ecus"]}
    assert fingerprints == {
        e.serial: hashlib.sha256(e.signing_public_key).hexdigest() for e in car.ecus
    }
    assert document["lifecycle"]["state"] == "activated"
    assert document["lifecycle"]["dealer"]["dealer_id"] == journey.dealer_id
    assert document["lifecycle"]["activation_counter"] == journey.issued["activation_counter"]
    assert set(journey.features) <= {e["feature"] for e in document["entitlements"]}

    [activation] = document["activations"]
    bundle = base64.b64decode(journey.issued["bundle"])
    assert activation == {
        "request_id": journey.issued["request_id"],
        "dealer_id": journey.dealer_id,
        "operator_id": "op-anna",
        "status": "applied",
        "activation_counter": journey.issued["activation_counter"],
        "created_at": NOW.isoformat(),
        "expires_at": journey.issued["expires_at"],
        "features": journey.issued["features"],
        "refusal_codes": [],
        "bundle_sha256": hashlib.sha256(bundle).hexdigest(),
        "ledger_index": None,  # applied, not yet logged: no follower runs in this test
    }
    [package] = document["offline_packages"]
    assert package["package_id"] == journey.offline["package_id"]
    assert (package["use_count"], package["double_use"]) == (2, True)
    assert [u["use_id"] for u in package["uses"]] == ["use-first", "use-again"]

    assert {s["ecu_serial"] for s in document["software_history"]} == {e.serial for e in car.ecus}
    assert all(s["change_ref"] == activation["request_id"] for s in document["software_history"])
    [consent] = document["consent_records"]
    assert (consent["category"], consent["choice"]) == ("location", "granted")
    assert consent["propagation"]["car"] == "complete"  # the completion reached the car
    [step] = document["workflow_steps"]
    assert step["ledger"] == {"origin": journey.origin, "index": 3, "anchored": False}
    assert document["ledger"]["logs"] == [{"origin": journey.origin, "anchored_size": None}]

    timeline = document["timeline"]
    instants = [datetime.fromisoformat(e["at"]) for e in timeline]
    assert instants == sorted(instants)
    assert timeline[0]["kind"] == "built"
    kinds = [(e["kind"], e["ref"]) for e in timeline]
    assert ("activation", activation["request_id"]) in kinds
    assert ("activation_completed", activation["request_id"]) in kinds
    assert kinds.count(("offline_package_used", package["package_id"])) == 2
    position = {kind: index for index, (kind, _ref) in enumerate(kinds)}
    assert position["workflow_step"] < position["consent"] < position["activation_completed"]
    assert position["activation"] < position["activation_completed"]


def test_the_dossier_holds_no_key_or_bundle_bytes(world: CloudWorld, clients: Clients) -> None:
    journey = _drive(world, clients)
    text = clients.staff().get(f"/v1/vehicles/{journey.vin}/dossier").text
    leaked = [t[:24] for t in _secret_texts(world, journey) if t in text]
    assert leaked == []
    assert "BEGIN" not in text and '"bundle"' not in text


def test_only_staff_with_the_read_scope_get_a_dossier(world: CloudWorld, clients: Clients) -> None:
    car, _features = world.activatable()
    url = f"/v1/vehicles/{car.vin}/dossier"
    as_dealer = clients.dealer(car.dealer_id or "").get(url)
    assert (as_dealer.status_code, as_dealer.json()["code"]) == (401, "token_required")
    assert clients.anonymous().get(url).status_code == 401
    with world.context.db.transaction() as session:
        writer = issue_token(session, "feed-robot", frozenset({Scope.REGISTRY_WRITE.value}), NOW)
    no_read = clients.anonymous().get(url, headers={"authorization": f"Bearer {writer}"})
    assert (no_read.status_code, no_read.json()["code"]) == (403, "scope_missing")


@pytest.mark.parametrize(
    ("vin", "where"),
    [
        ("WVW123", "length"),
        ("WVWZZZ1KZ8W0000I1", "position 16"),
        ("WVWZZZ1KZ8W00%24001", "position 14"),
    ],
)
def test_a_malformed_vin_is_a_422_naming_what_is_wrong(
    clients: Clients, vin: str, where: str
) -> None:
    answer = clients.staff().get(f"/v1/vehicles/{vin}/dossier")
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_failed"
    assert where in problem["detail"]


def test_a_vin_the_registry_does_not_hold_is_vehicle_unknown(
    world: CloudWorld, clients: Clients
) -> None:
    unknown = build_vin("WVW", "ZZZ1K", "9W999999")
    assert all(str(v.vin) != str(unknown) for v in world.demo.vehicles)
    answer = clients.staff().get(f"/v1/vehicles/{unknown}/dossier")
    assert (answer.status_code, answer.json()["code"]) == (404, "vehicle_unknown")


def test_reading_a_dossier_costs_the_same_statements_however_long_the_history(
    world: CloudWorld, clients: Clients
) -> None:
    journey = _drive(world, clients)
    quiet = next(v for v in world.demo.vehicles if str(v.vin) != journey.vin)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = world.context.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        read_facts(world.context.db, Vin.parse(str(quiet.vin), verify_check_digit=False))
        for_quiet = len(statements)
        statements.clear()
        facts = read_facts(world.context.db, Vin.parse(journey.vin))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(facts.software_history) == len(journey.car.ecus) > 1
    assert len(statements) == for_quiet <= 9


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["cloud", "dossier", *args])


def test_the_command_writes_the_same_dossier_as_json_and_as_a_page(
    world: CloudWorld, clients: Clients, db_url: str, tmp_path: Path
) -> None:
    journey = _drive(world, clients)
    served = _dossier(clients, journey.vin)
    as_json, as_html = tmp_path / "dossier.json", tmp_path / "dossier.html"

    written = _cli(journey.vin, "--database-url", db_url, "--out", str(as_json))
    assert written.exit_code == 0, written.output
    offline = json.loads(as_json.read_text(encoding="utf-8"))
    for section in ("factory", "ecus", "lifecycle", "activations", "offline_packages"):
        assert offline[section] == served[section], section
    for section in ("software_history", "consent_records", "workflow_steps", "ledger"):
        assert offline[section] == served[section], section
    assert [(e["kind"], e["ref"]) for e in offline["timeline"]] == [
        (e["kind"], e["ref"]) for e in served["timeline"]
    ]

    page = _cli(journey.vin, "--database-url", db_url, "--format", "html", "--out", str(as_html))
    assert page.exit_code == 0, page.output
    html = as_html.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert f"Vehicle dossier {journey.vin}" in html
    assert "<h2>Timeline</h2>" in html and journey.issued["request_id"] in html
    assert "used more than once" in html  # the double use is spelt out for the buyer
    leaked = [t[:24] for t in _secret_texts(world, journey) if t in html]
    assert leaked == []


def test_the_command_refuses_bad_input_and_writes_nothing(
    world: CloudWorld, db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "dossier.json"
    malformed = _cli("WVWZZZ1KZ8W0000I1", "--database-url", db_url, "--out", str(out))
    assert malformed.exit_code == 2
    assert "validation_failed" in malformed.output and "position 16" in malformed.output
    unknown = build_vin("WVW", "ZZZ1K", "9W999999")
    missing = _cli(str(unknown), "--database-url", db_url, "--out", str(out))
    assert missing.exit_code == 1 and "vehicle_unknown" in missing.output
    nowhere = tmp_path / "absent" / "cloud.sqlite3"
    car = str(world.demo.vehicles[0].vin)
    no_db = _cli(car, "--database-url", f"sqlite:///{nowhere}", "--out", str(out))
    assert no_db.exit_code == 1 and "database_unavailable" in no_db.output
    assert not nowhere.exists()  # reading never creates a database
    assert list((tmp_path / "out").iterdir()) == []


def _facts(**changes: Any) -> DossierFacts:
    car = VehicleFacts(
        vin="WVWZZZ1KZ8W000001",
        check_digit_valid=True,
        model="ID.7",
        model_year=2026,
        plant="Zwickau",
        build_date=datetime(2026, 1, 10, tzinfo=UTC).date(),
        market="EU",
        option_codes=("PNAV", "AHUD"),
        state="activated",
        dealer_id=None,
        dealer_name=None,
        dealer_city=None,
        dealer_country=None,
        owner_ref="owner-ref-1",
        activation_counter=1,
        offline_counter=0,
        factory_digest="00" * 32,
    )
    return DossierFacts(vehicle=car, **changes)


def test_the_document_is_built_from_plain_facts_with_time_decided_statuses() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    trial = EntitlementFacts(
        "NAV", "trial", "DE-MUC-01", "active", at - timedelta(days=40), at - timedelta(days=10), at
    )
    later = EntitlementFacts("HUD", "purchase", "oem", "active", at + timedelta(days=1), None, at)
    step = StepFacts(
        event_id="ev-1",
        dealer_id="DE-MUC-01",
        edge="edge-1",
        occurred_at=at - timedelta(days=20),
        workflow_id="wf-1",
        seq=1,
        from_state=None,
        to_state="identified",
        status="ok",
        offline=False,
        evidence_sha256="aa" * 32,
        ledger=LedgerRef("edge-1.example", 7, 8),
    )
    document = build_dossier(_facts(entitlements=[later, trial], workflow_steps=[step]), at)
    assert [e["status"] for e in document["entitlements"]] == ["pending", "expired"]
    assert document["workflow_steps"][0]["ledger"]["anchored"] is True  # index 7 < size 8
    assert [e["kind"] for e in document["timeline"]] == [
        "built",
        "entitlement",
        "workflow_step",
        "entitlement",
    ]
    assert document["lifecycle"]["dealer"] is None
    assert document["factory"]["option_codes"] == ["AHUD", "PNAV"]
    assert build_dossier(_facts(), at) == build_dossier(_facts(), at)
