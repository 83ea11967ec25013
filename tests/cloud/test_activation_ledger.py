"""Applied activations in the cloud's Merkle log: logged by the follower, not by the hot path.

An applied activation becomes one ``activation`` leaf (operator only as a commitment, bundle
pinned by its SHA-256) and its row names the leaf, in one transaction; a step run again logs
nothing more. A buyer's history of the car holds the activation beside its handover and transfer,
in time order, each proved; a tampered activation record fails. Two followers at once on
PostgreSQL log each activation exactly once and the log still verifies.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from forecourt.cloud.activations.ledger import (
    ActivationLedgerFollower,
    FollowResult,
    activation_record,
)
from forecourt.cloud.db import Database
from forecourt.cloud.dossier.html import render_html
from forecourt.cloud.lifecycle.history import verify_history
from forecourt.ledger.audit import audit_store
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.ledger.entry import ActivityRecord, EventKind, decode_record, open_commitment
from forecourt.ledger.errors import EntryError, ProofError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.ledger import LedgerSalt
from forecourt.store.registry import ActivationRow
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, OPERATOR, CloudWorld
from tests.dbs import fresh_postgres_database

ORIGIN = "forecourt.example/cloud-ledger"


@pytest.fixture
def signer(world: CloudWorld) -> SoftwareNoteSigner:
    """The cloud log's key, known to the test as a published key is known to a buyer."""
    key = SoftwareNoteSigner.generate()
    world.config = dataclasses.replace(world.config, ledger_signer=key)
    return key


@pytest.fixture
def ticking(world: CloudWorld) -> None:
    """A clock that moves on a second at each reading: every event has its own moment."""
    moments = itertools.count()
    world.config = dataclasses.replace(
        world.config, clock=lambda: NOW + timedelta(seconds=next(moments))
    )
    world.context.config = world.config


@pytest.fixture
def store(world: CloudWorld) -> Iterator[MerkleLogStore]:
    opened = MerkleLogStore(world.context.db.engine)
    yield opened
    opened.close()


@pytest.fixture
def follower(world: CloudWorld, store: MerkleLogStore) -> ActivationLedgerFollower:
    return ActivationLedgerFollower(world.context.db, store)


def _activate(world: CloudWorld, clients: Clients, outcome: str | None = "applied") -> str:
    """An activation of an activatable car, reported with ``outcome`` (None: not reported)."""
    car, features = world.activatable()
    edge = clients.dealer(car.dealer_id or "")
    body = world.request(car, features)
    issued = edge.post("/v1/activations", json=body)
    assert issued.status_code == 201, issued.text
    if outcome is not None:
        reported = edge.post(
            f"/v1/activations/{body['request_id']}/report", json={"outcome": outcome}
        )
        assert reported.json()["status"] == outcome, reported.text
    return str(body["request_id"])


def _row(world: CloudWorld, request_id: str) -> ActivationRow:
    with world.context.db.sessions() as session:
        row = session.get(ActivationRow, request_id)
        assert row is not None
        return row


def test_an_applied_activation_is_logged_once_with_the_operator_only_committed(
    world: CloudWorld, clients: Clients, store: MerkleLogStore, follower: ActivationLedgerFollower
) -> None:
    request_id = _activate(world, clients)
    size = store.size()
    assert _row(world, request_id).ledger_index is None  # the report appended nothing

    result = follower.step()

    row = _row(world, request_id)
    assert result.logged == ((request_id, size),)
    assert row.ledger_index == size and store.size() == size + 1
    payload = store.entries(size, size + 1)[0].payload
    record = decode_record(payload)
    assert isinstance(record, ActivityRecord)
    assert record.kind is EventKind.ACTIVATION and record.vin == row.vin
    assert record.dealer_id == row.dealer_id and record.response_status == "applied"
    assert record.features == tuple((row.outcome or {})["features"]) != ()
    assert record.timestamp == row.created_at
    assert row.bundle is not None
    assert record.evidence_hashes == (hashlib.sha256(row.bundle).hexdigest(),)
    assert OPERATOR.encode() not in payload
    with world.context.db.sessions() as session:
        salt = session.get(LedgerSalt, (size, "operator_id"))
    assert salt is not None and open_commitment(record, "operator_id", OPERATOR, salt.salt)
    # Run again (another tick, another worker): nothing more is logged.
    assert follower.step() == FollowResult()
    assert store.size() == size + 1


def test_unreported_failed_and_refused_activations_are_not_logged(
    world: CloudWorld, clients: Clients, store: MerkleLogStore, follower: ActivationLedgerFollower
) -> None:
    failed = _activate(world, clients, "failed")
    pending = _activate(world, clients, None)
    size = store.size()

    assert follower.step().count == 0

    assert store.size() == size
    assert _row(world, failed).ledger_index is None and _row(world, pending).ledger_index is None


def test_a_backlog_is_logged_in_batches_oldest_first(
    world: CloudWorld, store: MerkleLogStore
) -> None:
    ids = _insert_applied(world.context.db, 7, vin=str(world.activatable()[0].vin))
    size = store.size()
    follower = ActivationLedgerFollower(world.context.db, store, batch=3)

    assert follower.catch_up() == 7

    logged = _logged(world.context.db)
    assert [logged[i] for i in ids] == list(range(size, size + 7))
    assert follower.step().count == 0
    with pytest.raises(ValueError, match="at least one"):
        ActivationLedgerFollower(world.context.db, store, batch=0)


def test_a_buyer_sees_activation_handover_and_transfer_all_verified_in_time_order(
    signer: SoftwareNoteSigner,
    ticking: None,
    world: CloudWorld,
    clients: Clients,
    follower: ActivationLedgerFollower,
) -> None:
    request_id = _activate(world, clients)  # the report moves the car to ``activated``
    vin = _row(world, request_id).vin
    staff = clients.staff()
    # The handover is logged before the follower's next tick: its index is the lower one.
    handover = {"to": "delivered", "owner_ref": "crm-first-owner"}
    assert staff.post(f"/v1/vehicles/{vin}/lifecycle", json=handover).status_code == 200
    assert follower.step().count == 1
    transfer = {"to": "transferred", "owner_ref": "crm-second-owner"}
    assert staff.post(f"/v1/vehicles/{vin}/lifecycle", json=transfer).status_code == 200

    history = staff.get(f"/v1/vehicles/{vin}/history").json()
    verifier = verifier_for(ORIGIN, signer)
    records = verify_history(history, verifier, vin)

    kinds = [(r.kind.value, r.response_status) for r in records]
    assert kinds[:3] == [
        ("activation", "applied"),
        ("ownership-change", "delivered"),
        ("ownership-change", "transferred"),
    ]
    activation = history["records"][0]
    assert activation["index"] == _row(world, request_id).ledger_index
    assert activation["index"] > history["records"][1]["index"]  # logged after, listed before
    assert activation["record"]["features"] == list(records[0].features) != []
    # The dossier's activations section names the same record.
    dossier = staff.get(f"/v1/vehicles/{vin}/dossier").json()
    listed = {a["request_id"]: a["ledger_index"] for a in dossier["activations"]}
    assert listed[request_id] == activation["index"]
    page = render_html(dossier)
    assert "<th>Ledger #</th>" in page and f"<td>{activation['index']}</td>" in page

    # A seller who adds a feature to the activation, or moves it after the handover, is caught.
    tampered = copy.deepcopy(history)
    payload = base64.b64decode(tampered["records"][0]["payload"])
    record = json.loads(payload)
    record["features"] = [*record["features"], "extra-feature"]
    tampered["records"][0]["payload"] = base64.b64encode(
        json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    ).decode()
    with pytest.raises(ProofError, match="does not lead to the root"):
        verify_history(tampered, verifier, vin)
    moved = copy.deepcopy(history)
    moved["records"][0], moved["records"][1] = moved["records"][1], moved["records"][0]
    with pytest.raises(EntryError, match="not in time order"):
        verify_history(moved, verifier, vin)


def test_a_car_without_logged_activations_has_a_history_without_any(
    signer: SoftwareNoteSigner, world: CloudWorld, clients: Clients
) -> None:
    request_id = _activate(world, clients)  # applied, not yet logged by the follower
    vin = _row(world, request_id).vin

    history = clients.staff().get(f"/v1/vehicles/{vin}/history").json()

    assert verify_history(history, verifier_for(ORIGIN, signer), vin) == []


# -- concurrency -------------------------------------------------------------------------------


def _insert_applied(db: Database, count: int, *, vin: str) -> list[str]:
    """``count`` applied activations straight into the table, one second apart, oldest first."""
    ids = [f"backlog-{i:04d}" for i in range(count)]
    with db.transaction() as session:
        for i, request_id in enumerate(ids):
            session.add(
                ActivationRow(
                    request_id=request_id,
                    request_digest="0" * 64,
                    vin=vin,
                    open_vin=None,
                    dealer_id="DE-MUC-01",
                    operator_id=f"op-{i}",
                    status="applied",
                    created_at=NOW + timedelta(seconds=i),
                    expires_at=NOW + timedelta(seconds=i, minutes=15),
                    activation_counter=i + 1,
                    bundle=f"bundle {i}".encode(),
                    outcome={"features": ["adaptive-cruise"]},
                )
            )
    return ids


class _PausedStore(MerkleLogStore):
    """A store whose first append waits for ``release``: a follower held between its claim and
    its append, while another one runs."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.claimed = threading.Event()
        self.release = threading.Event()

    def append_in(self, session: Session, payloads: Sequence[bytes]) -> list[int]:
        if not self.claimed.is_set():
            self.claimed.set()
            assert self.release.wait(30), "the test never released the paused follower"
        return super().append_in(session, payloads)


def _logged(db: Database) -> dict[str, int | None]:
    with db.sessions() as session:
        rows = session.execute(select(ActivationRow.request_id, ActivationRow.ledger_index))
        return {request_id: index for request_id, index in rows}


def test_two_followers_at_once_on_postgresql_log_each_activation_exactly_once() -> None:
    with fresh_postgres_database() as url:
        setup = Database(url)
        ids = _insert_applied(setup, 40, vin="WFKTW3S88RM000001")
        first_db, second_db = (
            Database(url, run_migrations=False),
            Database(url, run_migrations=False),
        )
        paused = _PausedStore(first_db.engine)
        second_store = MerkleLogStore(second_db.engine)
        try:
            # 1. One follower claims a batch and stops before appending; the other skips the
            #    claimed rows (no wait), logs the next ones, and the first then appends its own.
            first = ActivationLedgerFollower(first_db, paused, batch=10)
            second = ActivationLedgerFollower(second_db, second_store, batch=10)
            outcome: list[FollowResult] = []
            held = threading.Thread(target=lambda: outcome.append(first.step()))
            held.start()
            assert paused.claimed.wait(30)
            overtaking = second.step()
            paused.release.set()
            held.join(30)
            assert [r for r, _ in outcome[0].logged] == ids[:10]
            assert [r for r, _ in overtaking.logged] == ids[10:20]
            assert [i for _, i in overtaking.logged] == list(range(0, 10))
            assert [i for _, i in outcome[0].logged] == list(range(10, 20))

            # 2. Both catch up at once, started together, until nothing is left.
            start = threading.Barrier(2)
            errors: list[BaseException] = []

            def run(follower: ActivationLedgerFollower) -> None:
                start.wait(30)
                try:
                    while follower.step().count:
                        pass
                except BaseException as exc:  # any failure, reported by the assertion below
                    errors.append(exc)

            workers = [
                threading.Thread(target=run, args=(f,))
                for f in (
                    ActivationLedgerFollower(first_db, MerkleLogStore(first_db.engine), batch=3),
                    ActivationLedgerFollower(second_db, second_store, batch=3),
                )
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join(60)
            assert errors == []
            for leftover in (first, second):  # one stopped early: the other held the rest
                leftover.catch_up()

            logged = _logged(setup)
            assert sorted(i for i in logged.values() if i is not None) == list(range(40))
            assert all(logged[r] is not None for r in ids)
            size = second_store.size()
            assert size == 40
            with setup.sessions() as session:
                rows = {r.request_id: r for r in session.scalars(select(ActivationRow))}
            for request_id, index in logged.items():
                assert index is not None
                leaf = second_store.entries(index, index + 1)[0].payload
                assert decode_record(leaf) == _with_commitment(rows[request_id], leaf)
            log = TransparencyLog(second_store, ORIGIN, SoftwareNoteSigner.generate())
            log.issue_checkpoint()
            assert audit_store(second_store, log.verifier).size == 40
        finally:
            for db in (setup, first_db, second_db):
                db.dispose()


def _with_commitment(row: ActivationRow, leaf: bytes) -> ActivityRecord:
    """``row``'s record with the operator commitment the leaf carries (salts are random)."""
    stored = decode_record(leaf)
    assert isinstance(stored, ActivityRecord)
    return dataclasses.replace(activation_record(row), commitments=dict(stored.commitments))
