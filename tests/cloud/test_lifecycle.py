"""The car's life after the dealer over real HTTP and mutual TLS, on SQLite and PostgreSQL:
handover, service visit, change of owner, scrapping; each change in the cloud's ledger in the
same transaction as the registry's, and the history a buyer verifies offline with the log key."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.cloud.auth import issue_token
from forecourt.cloud.catalog.service import entitlements_of, grant
from forecourt.cloud.lifecycle import service as lifecycle_module
from forecourt.cloud.lifecycle.history import verify_history
from forecourt.cloud.lifecycle.service import LifecycleService
from forecourt.core import Entitlement, EntitlementSource, LifecycleState, Vehicle
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.ledger.entry import ActivityRecord, EventKind, decode_record, open_commitment
from forecourt.ledger.errors import LedgerError, NoteError, ProofError
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.ledger import LedgerSalt
from forecourt.store.registry import VehicleRow
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld

runner = CliRunner()
ORIGIN = "forecourt.example/cloud-ledger"


@pytest.fixture
def signer(world: CloudWorld) -> SoftwareNoteSigner:
    """The cloud log's key, known to the test as a published key is known to a buyer."""
    key = SoftwareNoteSigner.generate()
    world.config = dataclasses.replace(world.config, ledger_signer=key)
    return key


@pytest.fixture
def store(world: CloudWorld) -> Iterator[MerkleLogStore]:
    opened = MerkleLogStore(world.context.db.engine)
    yield opened
    opened.close()


def _car_at_dealer(world: CloudWorld) -> Vehicle:
    return next(c for c in world.demo.vehicles if c.state is LifecycleState.AT_DEALER)


def _grant_rights(world: CloudWorld, car: Vehicle) -> dict[str, int]:
    """A subscription, a trial, a perpetual purchase and standard equipment, by name."""
    code = world.demo.catalog.features[0].code
    rights = {
        "subscription": Entitlement(
            car.vin, code, EntitlementSource.PURCHASE, NOW, NOW + timedelta(days=365)
        ),
        "trial": Entitlement(car.vin, code, EntitlementSource.TRIAL, NOW, NOW + timedelta(days=30)),
        "perpetual": Entitlement(car.vin, code, EntitlementSource.PURCHASE, NOW, None),
        "standard": Entitlement(car.vin, code, EntitlementSource.STANDARD, NOW, None),
    }
    with world.context.db.transaction() as session:
        return {name: grant(session, e, f"lc-{name}", NOW) for name, e in rights.items()}


def _states(world: CloudWorld, vin: str) -> dict[int, str]:
    with world.context.db.sessions() as session:
        return {ident: e.state.value for ident, e in entitlements_of(session, vin)}


def _vehicle(world: CloudWorld, vin: str) -> tuple[str, str | None]:
    with world.context.db.sessions() as session:
        row = session.get(VehicleRow, vin)
        assert row is not None
        return row.state, row.owner_ref


def _activated(clients: Clients, car: Vehicle) -> str:
    vin = str(car.vin)
    moved = clients.staff().put(f"/v1/vehicles/{vin}/state", json={"state": "activated"})
    assert moved.status_code == 200, moved.text
    return vin


def test_life_after_the_dealer_is_applied_recorded_and_provable(
    signer: SoftwareNoteSigner,
    clients: Clients,
    world: CloudWorld,
    store: MerkleLogStore,
    tmp_path: Path,
) -> None:
    car = _car_at_dealer(world)
    vin = _activated(clients, car)
    rights = _grant_rights(world, car)
    staff = clients.staff()

    handover = staff.post(
        f"/v1/vehicles/{vin}/lifecycle", json={"to": "delivered", "owner_ref": "crm-first"}
    )
    assert handover.status_code == 200, handover.text
    assert handover.json()["ended_entitlements"] == []
    visit = staff.post(f"/v1/vehicles/{vin}/service-visits", json={"dealer_id": car.dealer_id})
    assert visit.status_code == 201, visit.text
    assert staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "in_service"}).is_success
    transfer = staff.post(
        f"/v1/vehicles/{vin}/lifecycle", json={"to": "transferred", "owner_ref": "crm-second"}
    ).json()
    ended = {e["entitlement_id"]: e["reason"] for e in transfer["ended_entitlements"]}
    assert ended[rights["subscription"]] == ended[rights["trial"]] == "owner-changed"
    assert rights["perpetual"] not in ended and rights["standard"] not in ended
    states = _states(world, vin)
    assert (states[rights["subscription"]], states[rights["trial"]]) == ("revoked", "revoked")
    assert (states[rights["perpetual"]], states[rights["standard"]]) == ("active", "active")
    assert staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "in_service"}).is_success
    assert _vehicle(world, vin) == ("in_service", "crm-second")

    history = staff.get(f"/v1/vehicles/{vin}/history").json()
    records = verify_history(history, verifier_for(ORIGIN, signer), vin)
    # A handover, a visit, in service, the transfer and the rights it ended, in service again.
    assert [(r.kind, r.response_status) for r in records] == [
        (EventKind.LIFECYCLE_CHANGE, "activated"),
        (EventKind.OWNERSHIP_CHANGE, "delivered"),
        (EventKind.LIFECYCLE_CHANGE, "service-visit"),
        (EventKind.LIFECYCLE_CHANGE, "in_service"),
        (EventKind.OWNERSHIP_CHANGE, "transferred"),
        (EventKind.REVOCATION, "owner-changed"),
        (EventKind.LIFECYCLE_CHANGE, "in_service"),
    ]
    assert records[2].dealer_id == car.dealer_id
    # Owners only as commitments: never in a leaf, yet the salt opens the right one.
    for item in history["records"]:
        payload = base64.b64decode(item["payload"])
        assert b"crm-first" not in payload and b"crm-second" not in payload
    transfer_index = history["records"][4]["index"]
    salt = store.salts(transfer_index)["owner_ref"]
    assert open_commitment(records[4], "owner_ref", "crm-second", salt)
    assert not open_commitment(records[4], "owner_ref", "crm-first", salt)

    # Any one record verifies with the published key alone, with the ledger's own command.
    (tmp_path / "checkpoint").write_text(history["checkpoint"])
    (tmp_path / "log.vkey").write_text(verifier_for(ORIGIN, signer).to_vkey())
    (tmp_path / "record.json").write_text(json.dumps(history["records"][4]))
    checked = runner.invoke(app, _verify_args(tmp_path, "record.json"))
    assert checked.exit_code == 0, checked.output

    scrapped = staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "scrapped"}).json()
    assert {e["entitlement_id"] for e in scrapped["ended_entitlements"]} >= {
        rights["perpetual"],
        rights["standard"],
    }
    assert {e["reason"] for e in scrapped["ended_entitlements"]} == {"vehicle-scrapped"}
    again = staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "in_service"})
    assert (again.status_code, again.json()["code"]) == (409, "lifecycle_transition_not_allowed")


def _verify_args(directory: Path, record: str) -> list[str]:
    return [
        "ledger",
        "verify",
        "inclusion",
        str(directory / record),
        "--checkpoint",
        str(directory / "checkpoint"),
        "--key",
        str(directory / "log.vkey"),
    ]


def test_refused_changes_are_stable_problems_and_change_nothing(
    clients: Clients, world: CloudWorld, store: MerkleLogStore
) -> None:
    car = _car_at_dealer(world)
    vin, staff = str(car.vin), clients.staff()
    size = store.size()
    early = staff.post(
        f"/v1/vehicles/{vin}/lifecycle", json={"to": "delivered", "owner_ref": "crm-1"}
    )
    assert (early.status_code, early.json()["code"]) == (409, "lifecycle_transition_not_allowed")
    assert store.size() == size
    _activated(clients, car)
    size = store.size()
    nobody = staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "delivered"})
    assert (nobody.status_code, nobody.json()["code"]) == (422, "validation_failed")
    staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "delivered", "owner_ref": "crm-1"})
    # Once with its owner, a car changes hands only by a transfer (which ends their rights).
    side_door = staff.put(f"/v1/vehicles/{vin}/owner", json={"owner_ref": "crm-2"})
    assert (side_door.status_code, side_door.json()["code"]) == (
        409,
        "lifecycle_transition_not_allowed",
    )
    same = staff.post(
        f"/v1/vehicles/{vin}/lifecycle", json={"to": "transferred", "owner_ref": "crm-1"}
    )
    assert (same.status_code, same.json()["code"]) == (422, "validation_failed")
    unknown = staff.post(f"/v1/vehicles/{vin}/service-visits", json={"dealer_id": "XX-NOPE-01"})
    assert unknown.json()["code"] == "dealer_unknown"
    assert _vehicle(world, vin) == ("delivered", "crm-1")
    assert store.size() == size + 1  # the handover alone


def test_lifecycle_changes_need_registry_write_and_history_needs_read(
    clients: Clients, world: CloudWorld
) -> None:
    car = _car_at_dealer(world)
    with world.context.db.transaction() as session:
        token = issue_token(session, "insurer", frozenset({"read"}), NOW)
    reader = clients.anonymous()
    reader.headers["authorization"] = f"Bearer {token}"
    denied = reader.post(f"/v1/vehicles/{car.vin}/lifecycle", json={"to": "scrapped"})
    assert (denied.status_code, denied.json()["code"]) == (403, "scope_missing")
    assert _vehicle(world, str(car.vin))[0] == "at_dealer"
    history = reader.get(f"/v1/vehicles/{car.vin}/history")
    assert history.status_code == 200, history.text
    assert history.json()["records"] == []
    assert clients.anonymous().get(f"/v1/vehicles/{car.vin}/history").status_code == 401


def test_a_tampered_record_or_a_proof_against_another_checkpoint_fails(
    signer: SoftwareNoteSigner, clients: Clients, world: CloudWorld, tmp_path: Path
) -> None:
    car = _car_at_dealer(world)
    vin, staff = _activated(clients, car), clients.staff()
    staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "delivered", "owner_ref": "crm-1"})
    first = staff.get(f"/v1/vehicles/{vin}/history").json()
    verifier = verifier_for(ORIGIN, signer)
    assert len(verify_history(first, verifier, vin)) == 2

    # The seller rewrites "delivered" as "in_service": the proof no longer holds.
    tampered = json.loads(json.dumps(first))
    payload = base64.b64decode(tampered["records"][1]["payload"])
    tampered["records"][1]["payload"] = base64.b64encode(
        payload.replace(b'"delivered"', b'"in_service"')
    ).decode()
    with pytest.raises(ProofError):
        verify_history(tampered, verifier, vin)

    # The same records against a later checkpoint (the log grew): refused, whatever the size says.
    staff.post(f"/v1/vehicles/{vin}/service-visits", json={"dealer_id": car.dealer_id})
    later = staff.get(f"/v1/vehicles/{vin}/history").json()
    assert later["checkpoint"] != first["checkpoint"]
    mixed = {**first, "checkpoint": later["checkpoint"]}
    with pytest.raises(ProofError):
        verify_history(mixed, verifier, vin)
    later_size = later["records"][0]["tree_size"]
    resized = {**mixed, "records": [{**r, "tree_size": later_size} for r in mixed["records"]]}
    with pytest.raises(LedgerError):
        verify_history(resized, verifier, vin)

    # Another key's checkpoint, and another car's history, are refused too.
    with pytest.raises(NoteError):
        verify_history(first, verifier_for(ORIGIN, SoftwareNoteSigner.generate()), vin)
    other = next(c for c in world.demo.vehicles if c.vin != car.vin)
    with pytest.raises(LedgerError):
        verify_history(first, verifier, str(other.vin))

    # The ledger's command line says so too (exit 1).
    (tmp_path / "checkpoint").write_text(first["checkpoint"])
    (tmp_path / "log.vkey").write_text(verifier.to_vkey())
    (tmp_path / "record.json").write_text(json.dumps(tampered["records"][1]))
    refused = runner.invoke(app, _verify_args(tmp_path, "record.json"))
    assert refused.exit_code == 1


def _transfer_ready(world: CloudWorld) -> tuple[LifecycleService, str, dict[str, int]]:
    """A delivered car with rights, and the service over the world's database."""
    car = _car_at_dealer(world)
    vin = str(car.vin)
    rights = _grant_rights(world, car)
    service = LifecycleService(MerkleLogStore(world.context.db.engine), ORIGIN, lambda: NOW)
    with world.context.db.transaction() as session:
        service.transition(session, vin, LifecycleState.ACTIVATED, actor="test")
        service.transition(session, vin, LifecycleState.DELIVERED, actor="test", owner_ref="crm-1")
    return service, vin, rights


class _Refused(Exception):
    pass


def test_a_ledger_that_cannot_append_leaves_the_registry_unchanged(
    world: CloudWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, vin, rights = _transfer_ready(world)
    before = _states(world, vin)

    def refuse(*_args: Any, **_kwargs: Any) -> list[int]:
        raise _Refused("ledger unavailable")

    monkeypatch.setattr(service.store, "append_in", refuse)
    with pytest.raises(_Refused), world.context.db.transaction() as session:
        service.transition(
            session, vin, LifecycleState.TRANSFERRED, actor="test", owner_ref="crm-2"
        )
    assert _vehicle(world, vin) == ("delivered", "crm-1")
    assert _states(world, vin) == before
    assert before[rights["subscription"]] == "active"


def test_a_registry_change_that_fails_leaves_no_ledger_record(
    world: CloudWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, vin, _rights = _transfer_ready(world)
    size = service.store.size()
    with world.context.db.sessions() as session:
        salts = len(session.scalars(select(LedgerSalt)).all())

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise _Refused("audit unavailable")

    # The audit row is written after the ledger's records: its failure must take them along.
    monkeypatch.setattr(lifecycle_module, "record_change", refuse)
    with pytest.raises(_Refused), world.context.db.transaction() as session:
        service.transition(
            session, vin, LifecycleState.TRANSFERRED, actor="test", owner_ref="crm-2"
        )
    monkeypatch.undo()
    assert service.store.size() == size
    with world.context.db.sessions() as session:
        assert len(session.scalars(select(LedgerSalt)).all()) == salts
    assert _vehicle(world, vin) == ("delivered", "crm-1")
    # The log goes on from where it was, and its proofs hold (nothing stale was cached).
    with world.context.db.transaction() as session:
        done = service.transition(session, vin, LifecycleState.TRANSFERRED, actor="test")
    assert done.ledger_indices[0] == size
    payload = service.store.entries(size, size + 1)[0].payload
    record = decode_record(payload)
    assert isinstance(record, ActivityRecord) and record.response_status == "transferred"
    root_size, root = service.store.root()
    service.store.inclusion_proof(size, root_size).verify(
        service.store.entries(size, size + 1)[0].leaf_hash, root
    )


def test_the_dossier_shows_lifecycle_events_with_their_ledger_index(
    clients: Clients, world: CloudWorld
) -> None:
    car = _car_at_dealer(world)
    vin, staff = _activated(clients, car), clients.staff()
    staff.post(f"/v1/vehicles/{vin}/lifecycle", json={"to": "delivered", "owner_ref": "crm-1"})
    history = staff.get(f"/v1/vehicles/{vin}/history").json()
    dossier = staff.get(f"/v1/vehicles/{vin}/dossier").json()
    events = [e for e in dossier["timeline"] if e["kind"] == "lifecycle"]
    assert [e["ref"] for e in events] == ["activated", "delivered"]
    assert [e["ledger"]["index"] for e in events] == [r["index"] for r in history["records"]]
    assert all(e["ledger"]["origin"] == ORIGIN and e["ledger"]["anchored"] for e in events)
    assert "crm-1" not in json.dumps(dossier["lifecycle_events"])
