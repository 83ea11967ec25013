"""Operator accounts and review decisions land in the edge ledger, in the transaction of the change.

An auditor relies on three things: every committed change has its entry (and a rolled-back one has
none), who acted and whom it concerned are only commitments that open with the stored salts, and
the log still audits clean with these entries among the car records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.audit import EdgeAudit, evidence_digest
from forecourt.edge.operators import (
    AuthenticationFailed,
    OperatorService,
    ReviewKind,
    ReviewService,
    ReviewState,
    Role,
)
from forecourt.ledger.audit import audit_store
from forecourt.ledger.checkpoint import SoftwareNoteSigner
from forecourt.ledger.entry import (
    DealerEventKind,
    DealerEventRecord,
    decode_record,
    open_commitment,
)
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.edge import EdgeOperator, EdgeReviewRequest
from forecourt.store.engine import alembic_config, create_engine_for, session_factory
from tests.edge.operators.conftest import CHEAP, DEALER, FakeClock, Staff

EDGE_ID = "edge-dealer-a"
BATCH = {"vins": ["WVWZZZ1JZXW000001"], "features": ["adas.l2plus"]}


class Crash(RuntimeError):
    """The process dies between the change and its commit."""


@pytest.fixture
def log(db_url: str) -> Iterator[TransparencyLog]:
    engine = create_engine_for(db_url)
    cfg = alembic_config(engine)
    cfg.set_main_option("path_separator", "os")  # Alembic 1.16+ warns without it
    for branch in ("edge", "ledger"):
        command.upgrade(cfg, f"{branch}@head")
    yield TransparencyLog(MerkleLogStore(engine), "edge.test", SoftwareNoteSigner.generate())
    engine.dispose()


@pytest.fixture
def sessions(log: TransparencyLog) -> sessionmaker[Session]:
    """The operators' sessions with the edge ledger bound, as the edge's wiring binds it."""
    factory = session_factory(log.store.engine)
    EdgeAudit(log, EDGE_ID).bind(factory)
    return factory


def dealer_events(log: TransparencyLog) -> list[DealerEventRecord]:
    records = [decode_record(e.payload) for e in log.store.entries(0, log.store.size())]
    return [r for r in records if isinstance(r, DealerEventRecord)]


def kinds(log: TransparencyLog) -> list[DealerEventKind]:
    return [r.kind for r in dealer_events(log)]


@contextmanager
def crash_before_commit(sessions: sessionmaker[Session]) -> Iterator[None]:
    """Every transaction of ``sessions`` fails at its commit, after all its statements ran."""

    def boom(session: Session) -> None:
        raise Crash("power lost before commit")

    event.listen(sessions, "before_commit", boom)
    try:
        with pytest.raises(Crash):
            yield
    finally:
        event.remove(sessions, "before_commit", boom)


def test_creating_an_operator_ledgers_who_created_whom_as_commitments(
    operators: OperatorService, staff: Staff, log: TransparencyLog
) -> None:
    admin = staff.admin().operator
    created = operators.create_operator(
        admin, dealer_id=DEALER, username="tina", display_name="Tina", role=Role.TECHNICIAN
    )
    index = log.store.size() - 1
    payload = log.store.entries(index, index + 1)[0].payload
    record = decode_record(payload)
    assert isinstance(record, DealerEventRecord)
    assert (record.kind, record.dealer_id, record.edge_id, record.role) == (
        DealerEventKind.OPERATOR_CREATED, DEALER, EDGE_ID, "technician",
    )  # fmt: skip
    salts = log.store.salts(index)
    assert open_commitment(record, "actor_id", admin.id, salts["actor_id"])
    assert open_commitment(record, "subject_id", created.operator.id, salts["subject_id"])
    assert not open_commitment(record, "subject_id", admin.id, salts["subject_id"])
    for clear in (admin.id, created.operator.id, "tina", "Tina"):
        assert clear.encode() not in payload


def test_the_account_lifecycle_is_ledgered_in_order(
    operators: OperatorService, staff: Staff, log: TransparencyLog
) -> None:
    admin = staff.admin().operator
    tech = staff.hire(Role.TECHNICIAN).operator
    operators.set_role(admin, tech.id, Role.AUDITOR)
    operators.set_active(admin, tech.id, False)
    operators.set_active(admin, tech.id, True)
    assert kinds(log) == [
        DealerEventKind.OPERATOR_CREATED,  # the first admin
        DealerEventKind.OPERATOR_CREATED,
        DealerEventKind.OPERATOR_ENROLLED,
        DealerEventKind.OPERATOR_ROLE_CHANGED,
        DealerEventKind.OPERATOR_DEACTIVATED,
        DealerEventKind.OPERATOR_ACTIVATED,
    ]
    assert dealer_events(log)[3].role == "auditor"


def test_a_lock_out_is_ledgered_with_no_actor(
    operators: OperatorService, staff: Staff, log: TransparencyLog
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    for _ in range(3):  # the fixture's policy locks after three failures
        with pytest.raises(AuthenticationFailed):
            operators.login(DEALER, tech.operator.username, "wrong password", "000000")
    locked = dealer_events(log)[-1]
    assert locked.kind is DealerEventKind.OPERATOR_LOCKED
    assert set(locked.commitments) == {"subject_id"}


def test_approving_a_review_ledgers_request_and_decision_pinning_the_payload(
    reviews: ReviewService, staff: Staff, log: TransparencyLog
) -> None:
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    manager = staff.hire(Role.SERVICE_MANAGER)
    before = len(dealer_events(log))
    req = reviews.request(
        senior.operator, ReviewKind.BATCH_ACTIVATION, BATCH, dealer_id=DEALER, reason="fleet"
    )
    reviews.approve(manager.operator, req.id, manager.code())
    requested, approved = dealer_events(log)[before:]
    assert (requested.kind, approved.kind) == (
        DealerEventKind.REVIEW_REQUESTED, DealerEventKind.REVIEW_APPROVED,
    )  # fmt: skip
    assert {requested.review_id, approved.review_id} == {req.id}
    assert approved.review_kind == "batch_activation"
    evidence = {
        "event": "review-approved",
        "request_id": req.id,
        "review_kind": "batch_activation",
        "state": "approved",
        "payload_sha256": req.payload_sha256,
    }
    assert approved.evidence_hash == evidence_digest(evidence)
    index = log.store.size() - 1
    salts = log.store.salts(index)
    assert open_commitment(approved, "actor_id", manager.operator.id, salts["actor_id"])
    assert open_commitment(approved, "subject_id", senior.operator.id, salts["subject_id"])


def test_approving_a_privilege_review_ledgers_its_execution_too(
    operators: OperatorService, reviews: ReviewService, staff: Staff, log: TransparencyLog
) -> None:
    manager = staff.hire(Role.SERVICE_MANAGER)  # set up without a review
    admin = staff.admin().operator
    created = operators.create_operator(
        admin, dealer_id=DEALER, username="sam", display_name="Sam", role=Role.SENIOR_TECHNICIAN
    )
    assert created.review_id is not None
    reviews.approve(manager.operator, created.review_id, manager.code())
    assert kinds(log)[-4:] == [
        DealerEventKind.OPERATOR_CREATED,
        DealerEventKind.REVIEW_REQUESTED,
        DealerEventKind.REVIEW_APPROVED,
        DealerEventKind.REVIEW_EXECUTED,
    ]


def _rows(sessions: sessionmaker[Session], query: Any) -> list[Any]:
    with sessions() as s:
        return list(s.execute(query).scalars())


@pytest.mark.parametrize("what", ["create", "approve"])
def test_a_crash_before_commit_leaves_neither_the_change_nor_its_entry(  # noqa: PLR0917 - fixtures
    what: str,
    operators: OperatorService,
    reviews: ReviewService,
    staff: Staff,
    sessions: sessionmaker[Session],
    log: TransparencyLog,
    clock: FakeClock,
) -> None:
    admin = staff.admin().operator
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    manager = staff.hire(Role.SERVICE_MANAGER)
    req = reviews.request(
        senior.operator, ReviewKind.BATCH_ACTIVATION, BATCH, dealer_id=DEALER, reason="fleet"
    )
    size = log.store.size()
    change: Callable[[], object] = {
        "create": lambda: operators.create_operator(
            admin, dealer_id=DEALER, username="late", display_name="Late", role=Role.TECHNICIAN
        ),
        "approve": lambda: reviews.approve(manager.operator, req.id, manager.code()),
    }[what]
    with crash_before_commit(sessions):
        change()
    assert log.store.size() == size
    assert _rows(sessions, select(EdgeOperator.id).where(EdgeOperator.username == "late")) == []
    state = _rows(sessions, select(EdgeReviewRequest.state).where(EdgeReviewRequest.id == req.id))
    assert state == [ReviewState.PENDING.value]
    clock.advance(30)
    change()  # done again after the restart: exactly one entry, at the next index
    assert log.store.size() == size + 1
    audit_store(log.store, log.verifier)


def test_operators_without_a_bound_ledger_still_work_and_write_no_entries(
    log: TransparencyLog, clock: FakeClock
) -> None:
    plain = session_factory(log.store.engine)  # nothing bound: a unit of the operators package
    staff = Staff(OperatorService(plain, clock=clock, passwords=CHEAP), clock)
    staff.hire(Role.TECHNICIAN)
    assert log.store.size() == 0
