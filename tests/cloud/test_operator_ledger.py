"""Operator registry changes as leaves of the cloud's Merkle log, on SQLite and PostgreSQL.

An edge's push and a staff confirmation each append dealer-event records in the transaction of
the change; the audit row names the leaf; the operator and who acted are only salted
commitments; an auditor proves a confirmation with the log's published key alone.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.cloud.registry import dealers as dealers_module
from forecourt.cloud.registry.dealers import (
    OperatorClaim,
    RegistryLedger,
    confirm_role,
    merge_edge_operators,
)
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.ledger.entry import (
    DealerEventKind,
    DealerEventRecord,
    canonical_json,
    decode_record,
    open_commitment,
)
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.ledger import LedgerSalt
from forecourt.store.registry import AuditRow, EdgeOperatorRow
from tests.cloud.conftest import Clients
from tests.cloud.world import AUDITOR, MANAGER, NOW, OPERATOR, CloudWorld, edge_name

runner = CliRunner()
ORIGIN = "forecourt.example/cloud-ledger"
#: Every person or acting identity the tests put through the registry.
PEOPLE = (OPERATOR, AUDITOR, MANAGER, "op-new", "op-max", "oem-admin", "staff:", "edge:")


class _Refused(RuntimeError):
    """The failure injected into the ledger or the audit."""


@pytest.fixture
def signer(world: CloudWorld) -> SoftwareNoteSigner:
    """The cloud log's key, known to the test as a published key is known to an auditor."""
    key = SoftwareNoteSigner.generate()
    world.config = dataclasses.replace(world.config, ledger_signer=key)
    return key


@pytest.fixture
def store(world: CloudWorld) -> Iterator[MerkleLogStore]:
    opened = MerkleLogStore(world.context.db.engine)
    yield opened
    opened.close()


def _serial(world: CloudWorld, dealer_id: str) -> str:
    return format(world.dealer_certs[dealer_id].cert.serial_number, "x")


def _audit(world: CloudWorld, start_id: int = 0) -> list[AuditRow]:
    with world.context.db.sessions() as session:
        return list(
            session.scalars(select(AuditRow).where(AuditRow.id > start_id).order_by(AuditRow.id))
        )


def _last_audit_id(world: CloudWorld) -> int:
    with world.context.db.sessions() as session:
        return int(session.scalar(select(func.max(AuditRow.id))) or 0)


def _salt_rows(world: CloudWorld) -> int:
    with world.context.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(LedgerSalt)) or 0)


def _operators(world: CloudWorld, dealer_id: str) -> dict[str, tuple[str, str | None]]:
    with world.context.db.sessions() as session:
        rows = session.scalars(
            select(EdgeOperatorRow).where(
                EdgeOperatorRow.dealer_id == dealer_id,
                EdgeOperatorRow.edge == edge_name(dealer_id),
            )
        )
        return {r.operator_id: (r.role, r.confirmed_role) for r in rows}


def _dealer_event(store: MerkleLogStore, index: int) -> DealerEventRecord:
    record = decode_record(store.entries(index, index + 1)[0].payload)
    assert isinstance(record, DealerEventRecord)
    return record


def test_an_edge_push_is_one_leaf_per_change_and_each_audit_row_names_its_leaf(
    world: CloudWorld, clients: Clients, store: MerkleLogStore
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    edge = clients.dealer(dealer_id)
    size, audited = store.size(), _last_audit_id(world)
    pushed = edge.put(
        "/v1/dealer/operators",
        json={
            "operators": [
                {"operator_id": OPERATOR, "role": "senior_technician"},
                {"operator_id": MANAGER, "role": "service_manager"},
                {"operator_id": "op-new", "role": "technician"},
            ]
        },
    )
    assert pushed.status_code == 200, pushed.text
    answer = pushed.json()
    # Removal first, then additions and role changes, each in operator order: one batch.
    assert answer["ledger_indices"] == [size, size + 1, size + 2]
    assert store.size() == size + 3
    records = [_dealer_event(store, i) for i in answer["ledger_indices"]]
    assert [(r.kind, r.role) for r in records] == [
        (DealerEventKind.OPERATOR_DEACTIVATED, "auditor"),
        (DealerEventKind.OPERATOR_ROLE_CHANGED, "senior_technician"),
        (DealerEventKind.OPERATOR_CREATED, "technician"),
    ]
    assert {(r.dealer_id, r.edge_id, r.timestamp) for r in records} == {
        (dealer_id, edge_name(dealer_id), NOW)
    }
    rows = _audit(world, audited)
    assert [(r.action, r.subject, r.detail["ledger"]) for r in rows] == [
        ("operator_removed", AUDITOR, {"origin": ORIGIN, "indices": [size]}),
        ("operator_role_changed", OPERATOR, {"origin": ORIGIN, "indices": [size + 1]}),
        ("operator_added", "op-new", {"origin": ORIGIN, "indices": [size + 2]}),
    ]
    actor = f"edge:{_serial(world, dealer_id)}"
    for row, record in zip(rows, records, strict=True):
        index = row.detail["ledger"]["indices"][0]
        salts = store.salts(index)
        assert set(salts) == {"actor_id", "subject_id"}
        assert open_commitment(record, "subject_id", row.subject, salts["subject_id"])
        assert open_commitment(record, "actor_id", actor, salts["actor_id"])
        assert not open_commitment(record, "subject_id", MANAGER, salts["subject_id"])
        # The evidence is the audit detail (less its ledger reference): staff recompute it.
        detail = {k: v for k, v in row.detail.items() if k != "ledger"}
        evidence = canonical_json({"event": record.kind.value, **detail})
        assert record.evidence_hash == hashlib.sha256(evidence).hexdigest()


def test_a_push_that_changes_nothing_appends_nothing_and_audits_nothing(
    world: CloudWorld, clients: Clients, store: MerkleLogStore
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    edge = clients.dealer(dealer_id)
    same = [
        {"operator_id": OPERATOR, "role": "technician"},
        {"operator_id": AUDITOR, "role": "auditor"},
        {"operator_id": MANAGER, "role": "service_manager"},
    ]
    size, audited = store.size(), _last_audit_id(world)
    answer = edge.put("/v1/dealer/operators", json={"operators": same}).json()
    assert answer["ledger_indices"] == []
    assert (answer["added"], answer["removed"], answer["role_changed"]) == ([], [], [])
    assert store.size() == size
    assert _audit(world, audited) == []


def test_no_leaf_of_the_cloud_log_holds_a_person_in_clear(
    world: CloudWorld, clients: Clients, store: MerkleLogStore
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    edge = clients.dealer(dealer_id)
    mine = [{"operator_id": "op-max", "role": "dealer_admin"}]
    assert edge.put("/v1/dealer/operators", json={"operators": mine}).status_code == 200
    url = f"/v1/dealers/{dealer_id}/edges/{edge_name(dealer_id)}/operators/op-max/confirmation"
    assert clients.staff().put(url, json={"role": "dealer_admin"}).status_code == 200
    # The seeded registry's leaves too: every operator, edge serial and staff subject so far.
    entries = store.entries(0, store.size())
    assert len(entries) >= 2 * len(world.demo.dealers) + 2
    serials = tuple(_serial(world, d.dealer_id) for d in world.demo.dealers)
    for entry in entries:
        for person in (*PEOPLE, *serials):
            assert person.encode() not in entry.payload, (person, entry.payload)
        # The salts that open the commitments are kept apart, never in the leaf.
        for salt in store.salts(entry.index).values():
            assert salt.hex().encode() not in entry.payload and salt not in entry.payload


def test_a_confirmation_is_proved_by_an_auditor_with_the_log_key_alone(
    signer: SoftwareNoteSigner,
    world: CloudWorld,
    clients: Clients,
    store: MerkleLogStore,
    tmp_path: Path,
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    edge = clients.dealer(dealer_id)
    mine = [{"operator_id": "op-max", "role": "dealer_admin"}]
    assert edge.put("/v1/dealer/operators", json={"operators": mine}).status_code == 200
    url = f"/v1/dealers/{dealer_id}/edges/{edge_name(dealer_id)}/operators/op-max/confirmation"
    staff = clients.staff()
    confirmed = staff.put(url, json={"role": "dealer_admin"})
    assert confirmed.status_code == 200, confirmed.text
    index = confirmed.json()["ledger_index"]
    [row] = [r for r in _audit(world) if r.detail.get("ledger", {}).get("indices") == [index]]
    assert (row.action, row.subject, row.actor) == (
        "operator_role_confirmed",
        "op-max",
        "staff:oem-admin",
    )

    # What the auditor fetches: a signed checkpoint, the leaf, its inclusion proof.
    note = staff.get("/v1/ledger/checkpoint").text
    size = int(note.splitlines()[1])
    assert size > index
    [entry] = staff.get("/v1/ledger/entries", params={"start": index, "end": index + 1}).json()
    proof = staff.get("/v1/ledger/proof/inclusion", params={"index": index, "tree_size": size})
    assert proof.status_code == 200, proof.text
    record = decode_record(base64.b64decode(entry["payload"]))
    assert isinstance(record, DealerEventRecord)
    assert (record.kind, record.role, record.dealer_id, record.edge_id) == (
        DealerEventKind.OPERATOR_ROLE_CONFIRMED,
        "dealer_admin",
        dealer_id,
        edge_name(dealer_id),
    )
    # Staff holding the salts show whom it was about and who confirmed.
    salts = store.salts(index)
    assert open_commitment(record, "subject_id", "op-max", salts["subject_id"])
    assert open_commitment(record, "actor_id", "staff:oem-admin", salts["actor_id"])

    (tmp_path / "checkpoint").write_text(note)
    (tmp_path / "log.vkey").write_text(verifier_for(ORIGIN, signer).to_vkey())
    (tmp_path / "leaf.json").write_text(json.dumps({**proof.json(), "payload": entry["payload"]}))
    checked = runner.invoke(app, _verify_args(tmp_path, "leaf.json"))
    assert checked.exit_code == 0, checked.output
    assert f"entry {index} is in {ORIGIN}" in checked.output

    # A leaf claiming another role (or another kind) does not verify.
    forged = dataclasses.replace(record, role="service_manager").encode()
    (tmp_path / "forged.json").write_text(
        json.dumps({**proof.json(), "payload": base64.b64encode(forged).decode()})
    )
    refused = runner.invoke(app, _verify_args(tmp_path, "forged.json"))
    assert refused.exit_code == 1, refused.output


def _verify_args(directory: Path, leaf: str) -> list[str]:
    return [
        "ledger",
        "verify",
        "inclusion",
        str(directory / leaf),
        "--checkpoint",
        str(directory / "checkpoint"),
        "--key",
        str(directory / "log.vkey"),
    ]


def test_shredding_a_confirmations_salts_keeps_the_leaf_and_its_proof(
    world: CloudWorld, store: MerkleLogStore
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    ledger = RegistryLedger(store, ORIGIN)
    with world.context.db.transaction() as session:
        index = confirm_role(
            session,
            dealer_id,
            edge_name(dealer_id),
            MANAGER,
            role="service_manager",
            by="staff:oem-admin",
            now=NOW,
            ledger=ledger,
        )
    leaf = store.entries(index, index + 1)[0]
    record = _dealer_event(store, index)
    salts = store.salts(index)
    assert open_commitment(record, "subject_id", MANAGER, salts["subject_id"])

    assert store.shred(index) == 2
    assert store.salts(index) == {}
    kept = store.entries(index, index + 1)[0]
    assert (kept.payload, kept.leaf_hash) == (leaf.payload, leaf.leaf_hash)
    size, root = store.root()
    store.inclusion_proof(index, size).verify(kept.leaf_hash, root)
    # Without the salt the commitment opens to nobody (the old salt is gone from the store).
    assert MANAGER.encode() not in kept.payload


@pytest.mark.parametrize("failing", ["ledger", "audit"])
def test_a_failed_append_or_audit_leaves_neither_the_operator_change_nor_its_leaf(
    failing: str, world: CloudWorld, store: MerkleLogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    ledger = RegistryLedger(store, ORIGIN)
    before = _operators(world, dealer_id)
    size, salts, audited = store.size(), _salt_rows(world), _last_audit_id(world)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise _Refused(f"{failing} unavailable")

    if failing == "ledger":
        monkeypatch.setattr(store, "append_in", refuse)
    else:
        # The audit rows are written after the leaves: their failure must take the leaves along.
        monkeypatch.setattr(dealers_module, "record_change", refuse)
    with pytest.raises(_Refused), world.context.db.transaction() as session:
        merge_edge_operators(
            session,
            dealer_id,
            edge_name(dealer_id),
            certificate_serial=world.dealer_certs[dealer_id].cert.serial_number,
            operators=[OperatorClaim("op-new", "technician")],
            now=NOW,
            ledger=ledger,
        )
    with pytest.raises(_Refused), world.context.db.transaction() as session:
        confirm_role(
            session,
            dealer_id,
            edge_name(dealer_id),
            MANAGER,
            role="service_manager",
            by="staff:oem-admin",
            now=NOW,
            ledger=ledger,
        )
    monkeypatch.undo()
    assert _operators(world, dealer_id) == before
    assert store.size() == size
    assert _salt_rows(world) == salts
    assert _audit(world, audited) == []

    # The log goes on from where it was, and its proofs hold (nothing stale was cached).
    with world.context.db.transaction() as session:
        changes = merge_edge_operators(
            session,
            dealer_id,
            edge_name(dealer_id),
            certificate_serial=world.dealer_certs[dealer_id].cert.serial_number,
            operators=[OperatorClaim("op-new", "technician")],
            now=NOW,
            ledger=ledger,
        )
    assert changes.ledger_indices == (size, size + 1, size + 2, size + 3)
    assert changes.added == ("op-new",) and len(changes.removed) == 3
    root_size, root = store.root()
    for index in changes.ledger_indices:
        entry = store.entries(index, index + 1)[0]
        store.inclusion_proof(index, root_size).verify(entry.leaf_hash, root)


def test_a_refused_push_or_confirmation_appends_nothing(
    world: CloudWorld, clients: Clients, store: MerkleLogStore
) -> None:
    dealer_id = world.demo.dealers[0].dealer_id
    edge = clients.dealer(dealer_id)
    size, audited = store.size(), _last_audit_id(world)
    unknown_role = [{"operator_id": "op-new", "role": "owner"}]
    refused = edge.put("/v1/dealer/operators", json={"operators": unknown_role})
    assert (refused.status_code, refused.json()["code"]) == (422, "validation_failed")
    base = f"/v1/dealers/{dealer_id}/edges/{edge_name(dealer_id)}/operators"
    staff = clients.staff()
    elevated = {"role": "dealer_admin"}
    assert staff.put(f"{base}/op-nobody/confirmation", json=elevated).status_code == 404
    assert staff.put(f"{base}/{OPERATOR}/confirmation", json=elevated).status_code == 409
    assert store.size() == size
    assert _audit(world, audited) == []


def test_an_activation_adds_no_leaf_to_the_cloud_log(
    world: CloudWorld, clients: Clients, store: MerkleLogStore
) -> None:
    car, features = world.activatable()
    size = store.size()
    issued = clients.dealer(car.dealer_id or "").post(
        "/v1/activations", json=world.request(car, features)
    )
    assert issued.status_code == 201, issued.text
    assert store.size() == size
