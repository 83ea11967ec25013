"""``POST /v1/sync/events`` over real HTTP and mutual TLS: each event held exactly once, whatever
the edge retries, two replicas racing, or the cloud failing in the middle of a batch."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.cloud.sync import ACTIVATION_COMPLETED, CONSENT_RECORDED, EVENT_TYPES, SyncService
from forecourt.cloud.sync.service import consent_records
from forecourt.edge import outbox
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.store.registry import ConsentRecordRow, SyncEventRow, VehicleRow
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld, build_world


def _dealer_car(world: CloudWorld) -> tuple[str, str]:
    car = next(v for v in world.demo.vehicles if v.dealer_id in world.dealer_certs)
    assert car.dealer_id is not None
    return car.dealer_id, car.vin.value


def consent_event(
    dealer_id: str, vin: str, *, granted: bool = True, edge: str | None = None
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": CONSENT_RECORDED,
        "source": f"forecourt-edge/{edge or 'edge-' + dealer_id.lower()}",
        "subject": vin,
        "time": NOW.isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "vin": vin,
            "dealer_id": dealer_id,
            "notice_id": "privacy-notice",
            "notice_version": "2025-01",
            "region": "eu",
            "subject_sha256": "ab" * 32,
            "captured_at": NOW.isoformat(),
            "records": [
                {"record_id": str(uuid.uuid4()), "category": "location", "granted": granted}
            ],
        },
    }


def _held(world: CloudWorld) -> int:
    with world.context.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(SyncEventRow)) or 0)


def _consents(world: CloudWorld) -> int:
    with world.context.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ConsentRecordRow)) or 0)


@pytest.fixture
def dealer(world: CloudWorld, clients: Clients) -> Iterator[tuple[str, str, Any]]:
    dealer_id, vin = _dealer_car(world)
    yield dealer_id, vin, clients.dealer(dealer_id)


def test_the_cloud_knows_every_event_type_the_edge_outbox_pushes() -> None:
    pushed = {outbox.WORKFLOW_STEP, outbox.CONSENT_RECORDED, outbox.ACTIVATION_COMPLETED}
    assert pushed | {outbox.OFFLINE_PACKAGE_USED} == EVENT_TYPES


def test_a_retried_batch_is_answered_duplicate_and_held_once(
    world: CloudWorld, dealer: tuple[str, str, Any]
) -> None:
    dealer_id, vin, client = dealer
    batch = [consent_event(dealer_id, vin), consent_event(dealer_id, vin, granted=False)]
    first = client.post("/v1/sync/events", json=batch)
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == [e["id"] for e in batch]
    again = client.post("/v1/sync/events", json=batch)
    assert again.json()["accepted"] == [] and again.json()["duplicates"] == [e["id"] for e in batch]
    assert (_held(world), _consents(world)) == (2, 2)
    with world.context.db.sessions() as session:
        rows = consent_records(session, vin)
    assert [r["choice"] for r in rows] == ["granted", "denied"]  # the withdrawal is a new row
    assert rows[1]["supersedes_id"] == rows[0]["record_id"]
    assert rows[0]["propagation"] == {"cloud": "complete", "car": "pending", "crm": "pending"}


def test_a_cloud_failing_mid_batch_keeps_what_committed_and_the_retry_adds_the_rest_once(
    world: CloudWorld, dealer: tuple[str, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dealer_id, vin, client = dealer
    batch = [consent_event(dealer_id, vin) for _ in range(3)]
    original = SyncService._consent
    calls = {"n": 0}

    def crash_on_second(self: SyncService, session: Any, checked: Any, *rest: Any) -> None:
        calls["n"] += 1
        original(self, session, checked, *rest)
        if calls["n"] == 2:
            raise RuntimeError("power lost after the write, before the commit")

    monkeypatch.setattr(SyncService, "_consent", crash_on_second)
    failed = client.post("/v1/sync/events", json=batch)
    assert failed.status_code == 500
    assert (_held(world), _consents(world)) == (1, 1)  # the second rolled back whole
    monkeypatch.setattr(SyncService, "_consent", original)
    retry = client.post("/v1/sync/events", json=batch)
    assert retry.json()["duplicates"] == [batch[0]["id"]]
    assert retry.json()["accepted"] == [batch[1]["id"], batch[2]["id"]]
    assert (_held(world), _consents(world)) == (3, 3)


def test_two_replicas_receiving_the_same_batch_at_once_hold_each_event_once(
    world: CloudWorld, clients: Clients
) -> None:
    dealer_id, vin = _dealer_car(world)
    batch = [consent_event(dealer_id, vin) for _ in range(5)]
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def push() -> None:
        client = clients.dealer(dealer_id)
        start.wait(timeout=10)
        answers.append(client.post("/v1/sync/events", json=batch).json())

    threads = [threading.Thread(target=push) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    accepted = [i for a in answers for i in a["accepted"]]
    duplicates = [i for a in answers for i in a["duplicates"]]
    assert sorted(accepted) == sorted(e["id"] for e in batch)
    assert sorted(duplicates) == sorted(e["id"] for e in batch)
    assert (_held(world), _consents(world)) == (5, 5)


def test_events_claiming_another_edge_or_dealer_or_a_reused_id_are_refused_and_change_nothing(
    world: CloudWorld, dealer: tuple[str, str, Any]
) -> None:
    dealer_id, vin, client = dealer
    other = next(d for d in world.dealer_certs if d != dealer_id)
    foreign_source = consent_event(dealer_id, vin, edge="edge-somebody-else")
    foreign_dealer = consent_event(dealer_id, vin)
    foreign_dealer["data"]["dealer_id"] = other
    unknown = consent_event(dealer_id, vin) | {"type": "forecourt.edge.mystery.v1"}
    malformed = consent_event(dealer_id, vin)
    malformed["data"]["subject_sha256"] = "the customer's name"
    good = consent_event(dealer_id, vin)
    answer = client.post(
        "/v1/sync/events", json=[foreign_source, foreign_dealer, unknown, malformed, good]
    ).json()
    assert answer["accepted"] == [good["id"]]
    assert [(r["id"], r["code"]) for r in answer["rejected"]] == [
        (foreign_source["id"], "event_source_mismatch"),
        (foreign_dealer["id"], "event_dealer_mismatch"),
        (unknown["id"], "event_type_unknown"),
        (malformed["id"], "event_invalid"),
    ]
    reused = consent_event(dealer_id, vin) | {"id": good["id"]}
    again = client.post("/v1/sync/events", json=[reused]).json()
    assert [r["code"] for r in again["rejected"]] == ["event_id_reused"]
    assert (_held(world), _consents(world)) == (1, 1)


def test_a_batch_that_is_not_a_list_or_comes_without_a_certificate_is_refused(
    world: CloudWorld, clients: Clients, dealer: tuple[str, str, Any]
) -> None:
    _dealer_id, _vin, client = dealer
    assert client.post("/v1/sync/events", json={"id": "x"}).status_code == 422
    assert clients.staff().post("/v1/sync/events", json=[]).status_code == 401
    assert _held(world) == 0


def test_ledger_key_registration_is_idempotent_and_never_replaces_a_key(
    world: CloudWorld, clients: Clients
) -> None:
    dealer_id = next(iter(world.dealer_certs))
    origin = f"edge-x.{dealer_id.lower()}.forecourt.edge"
    vkey = verifier_for(origin, SoftwareNoteSigner.generate()).to_vkey()
    staff = clients.staff()
    url = f"/v1/dealers/{dealer_id}/edges/edge-x/ledger-key"
    first = staff.put(url, json={"vkey": vkey})
    assert first.status_code == 200 and first.json()["created"] is True
    assert staff.put(url, json={"vkey": vkey}).json()["created"] is False
    other = verifier_for(origin, SoftwareNoteSigner.generate()).to_vkey()
    assert staff.put(url, json={"vkey": other}).status_code == 409
    assert staff.put(url, json={"vkey": "not+a+key"}).status_code == 422
    dealer_client = clients.dealer(dealer_id)
    assert dealer_client.put(url, json={"vkey": vkey}).status_code == 401  # staff only


def test_register_edge_log_command_registers_the_key_the_edge_gives_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    world = build_world(sqlite_url, vehicles=1)
    world.context.db.dispose()
    dealer_id = next(iter(world.dealer_certs))
    vkey = verifier_for(f"edge-1.{dealer_id.lower()}.x", SoftwareNoteSigner.generate()).to_vkey()
    key_file = tmp_path / "edge.vkey"
    key_file.write_text(vkey + "\n")
    args = ["cloud", "register-edge-log", "--dealer", dealer_id, "--edge", "edge-1"]
    args += ["--vkey", str(key_file), "--database-url", sqlite_url]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "registered for" in first.output.splitlines()[-1]
    assert "already registered" in CliRunner().invoke(app, args).output
    key_file.write_text(
        verifier_for(f"edge-1.{dealer_id.lower()}.x", SoftwareNoteSigner.generate()).to_vkey()
    )
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "registered otherwise" in refused.output


def test_a_completion_cannot_raise_the_activation_counter_above_what_the_cloud_issued(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    dealer_id = car.dealer_id or ""
    edge = clients.dealer(dealer_id)
    issued = edge.post("/v1/activations", json=world.request(car, features))
    assert issued.status_code == 201, issued.text
    event = {
        **consent_event(dealer_id, str(car.vin)),
        "type": ACTIVATION_COMPLETED,
        "data": {
            "vin": str(car.vin),
            "dealer_id": dealer_id,
            "workflow_id": uuid.uuid4().hex,
            "bundle_sha256": "cd" * 32,
            "authorisation_id": issued.json()["request_id"],
            "activation_counter": 10**12,
        },
    }
    answer = edge.post("/v1/sync/events", json=[event])
    assert answer.json()["accepted"] == [event["id"]], answer.text
    with world.context.db.sessions() as session:
        car_row = session.get(VehicleRow, str(car.vin))
        assert car_row is not None
        assert car_row.activation_counter == issued.json()["activation_counter"]


def test_consent_for_another_dealers_car_or_superseding_another_cars_record_is_refused(
    world: CloudWorld, clients: Clients, dealer: tuple[str, str, Any]
) -> None:
    dealer_id, vin, client = dealer
    first = consent_event(dealer_id, vin)
    assert client.post("/v1/sync/events", json=[first]).json()["accepted"] == [first["id"]]
    earlier = first["data"]["records"][0]["record_id"]
    other_dealer, other_vin = next(
        (v.dealer_id, v.vin.value)
        for v in world.demo.vehicles
        if v.dealer_id in world.dealer_certs and v.dealer_id != dealer_id
    )
    assert other_dealer is not None
    other = clients.dealer(other_dealer)
    foreign_car = consent_event(other_dealer, vin)
    hijack = consent_event(other_dealer, other_vin)
    hijack["data"]["records"][0]["supersedes_id"] = earlier
    other_customer = consent_event(dealer_id, vin)
    other_customer["data"]["subject_sha256"] = "cd" * 32
    other_customer["data"]["records"][0]["supersedes_id"] = earlier
    refused = other.post("/v1/sync/events", json=[foreign_car, hijack]).json()
    assert [(r["id"], r["code"]) for r in refused["rejected"]] == [
        (foreign_car["id"], "vehicle_unknown"),
        (hijack["id"], "consent_supersedes_unknown"),
    ]
    mine = client.post("/v1/sync/events", json=[other_customer]).json()
    assert [r["code"] for r in mine["rejected"]] == ["consent_supersedes_unknown"]
    assert _consents(world) == 1
