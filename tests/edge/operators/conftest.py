"""Fixtures: a migrated edge database (SQLite and PostgreSQL), a clock the test moves, services."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators import (
    BootstrapCredentials,
    Operator,
    OperatorPolicy,
    OperatorService,
    PasswordHashing,
    ReviewService,
    Role,
    bootstrap_first_admin,
)
from forecourt.edge.operators.totp import code_at
from forecourt.store.edge import EdgeOperator, EdgeReviewRequest
from forecourt.store.engine import alembic_config, create_engine_for, session_factory

DEALER = "dealer-a"
OTHER_DEALER = "dealer-b"
PASSWORD = "correct horse battery staple"


class FakeClock:
    """Time that moves only when the test says so; TOTP steps are 30 s."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Person:
    """An operator with the secrets their head and phone hold."""

    operator: Operator
    password: str
    totp_secret: str
    clock: FakeClock

    def code(self) -> str:
        return code_at(self.totp_secret, self.clock())


#: A cheap argon2id cost: the tests exercise logic, not the hash's strength.
CHEAP = PasswordHashing.with_cost(time_cost=1, memory_kib=8, parallelism=1)


def migrate_edge(engine: Engine) -> None:
    """``forecourt.store.engine.migrate`` for the edge branch alone.

    Sets ``path_separator`` because Alembic 1.16+ warns (an error under this suite's warning
    filter) when a configuration lacks it; the shared ``alembic_config`` does not set it yet.
    """
    cfg = alembic_config(engine)
    cfg.set_main_option("path_separator", "os")
    command.upgrade(cfg, "edge@head")


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(db_url)
    migrate_edge(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def operators(sessions: sessionmaker[Session], clock: FakeClock) -> OperatorService:
    return OperatorService(
        sessions, clock=clock, policy=OperatorPolicy(max_failed_attempts=3), passwords=CHEAP
    )


@pytest.fixture
def reviews(
    sessions: sessionmaker[Session], operators: OperatorService, clock: FakeClock
) -> ReviewService:
    return ReviewService(sessions, operators, clock=clock)


class Staff:
    """Creates enrolled operators at a dealer, as its admin would."""

    def __init__(self, operators: OperatorService, clock: FakeClock) -> None:
        self._operators = operators
        self._clock = clock
        self._admins: dict[str, BootstrapCredentials] = {}
        self._hired = 0

    def admin(self, dealer_id: str = DEALER) -> Person:
        if dealer_id not in self._admins:
            self._admins[dealer_id] = bootstrap_first_admin(
                self._operators, dealer_id, password=PASSWORD
            )
            self._confirm(self._admins[dealer_id].operator_id, self._admins[dealer_id].totp_secret)
        creds = self._admins[dealer_id]
        return Person(
            self._operators.get(creds.operator_id), creds.password, creds.totp_secret, self._clock
        )

    def hire(self, role: Role, dealer_id: str = DEALER, username: str | None = None) -> Person:
        """An enrolled operator; a reviewer-capable role is granted as if already reviewed.

        The review itself is tested in ``test_privilege.py``; other tests just need the staff.
        """
        admin = self.admin(dealer_id).operator
        self._hired += 1
        name = username or f"{role.value}-{self._hired}"
        created = self._operators.create_operator(
            admin, dealer_id=dealer_id, username=name, display_name=role.value, role=role
        )
        secret = enrol(self._operators, dealer_id, name, created.enrolment_code, self._clock)
        if created.review_id is not None:
            grant_as_reviewed(self._operators, created.operator.id, created.review_id)
        return Person(self._operators.get(created.operator.id), PASSWORD, secret, self._clock)

    def _confirm(self, operator_id: str, secret: str) -> None:
        operator = self._operators.get(operator_id)
        self._operators.confirm_totp_enrolment(operator, code_at(secret, self._clock()))
        self._clock.advance(30)  # the next code is a fresh step


def enrolment_sessions(operators: OperatorService) -> sessionmaker[Session]:
    return operators._sessions


def enrol(
    operators: OperatorService, dealer_id: str, username: str, code: str, clock: FakeClock
) -> str:
    """The new operator's first sign-in: own password, own authenticator; returns its secret."""
    enrolment = operators.begin_enrolment(dealer_id, username, code)
    operators.complete_enrolment(
        dealer_id, username, code, PASSWORD, code_at(enrolment.secret, clock())
    )
    clock.advance(30)  # the next code is a fresh step
    return enrolment.secret


def grant_as_reviewed(operators: OperatorService, operator_id: str, review_id: str) -> None:
    """Give the pending role as an approved ``operator_privilege`` review would (set-up only)."""
    with enrolment_sessions(operators).begin() as s:
        row = s.get(EdgeOperator, operator_id)
        review = s.get(EdgeReviewRequest, review_id)
        assert row is not None and row.pending_role is not None and review is not None
        row.role, row.pending_role = row.pending_role, None
        row.awaiting_approval, row.active = False, True
        review.state = "executed"


@pytest.fixture
def staff(operators: OperatorService, clock: FakeClock) -> Staff:
    return Staff(operators, clock)
