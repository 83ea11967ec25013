"""TOTP secrets at rest: sealed in the database, bound to their operator, opened with its key."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from forecourt.edge.operators import (
    AuthenticationFailed,
    EnrolmentRefused,
    OperatorPolicy,
    OperatorService,
    Role,
    TotpEnrolmentError,
)
from forecourt.edge.operators.errors import TotpSecretUnreadable
from forecourt.edge.operators.sealing import (
    SEALED_PREFIX,
    TOTP_KEY_FILE,
    TotpKey,
    TotpKeyError,
)
from forecourt.edge.operators.totp import code_at
from forecourt.store.edge import EdgeOperator
from forecourt.store.engine import create_engine_for, session_factory
from tests.edge.operators.conftest import CHEAP, DEALER, FakeClock, Person, Staff, migrate_edge


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "edge.sqlite3"


@pytest.fixture
def sqlite_sessions(sqlite_file: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(f"sqlite:///{sqlite_file.as_posix()}")
    migrate_edge(engine)
    sessions = session_factory(engine)
    TotpKey.generate().bind(sessions)
    yield sessions
    engine.dispose()


def _service(
    sessions: sessionmaker[Session], clock: FakeClock, key: TotpKey | None = None
) -> OperatorService:
    return OperatorService(
        sessions,
        clock=clock,
        policy=OperatorPolicy(max_failed_attempts=3),
        passwords=CHEAP,
        totp_key=key,
    )


def _raw_secrets(sqlite_file: Path, operator_id: str) -> tuple[str | None, str | None]:
    """The row as SQLite holds it, read past SQLAlchemy and every service."""
    with sqlite3.connect(sqlite_file) as conn:
        row = conn.execute(
            "SELECT totp_secret, totp_pending_secret FROM edge_operators WHERE id = ?",
            (operator_id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _set_secret(sessions: sessionmaker[Session], operator_id: str, value: str) -> None:
    with sessions.begin() as s:
        s.execute(
            update(EdgeOperator).where(EdgeOperator.id == operator_id).values(totp_secret=value)
        )


def _stored(sessions: sessionmaker[Session], operator_id: str) -> EdgeOperator:
    with sessions() as s:
        return s.get_one(EdgeOperator, operator_id)


# -- what the database holds ----------------------------------------------------------------------


def test_the_raw_sqlite_row_and_files_never_hold_the_secret_and_sign_in_still_works(
    sqlite_sessions: sessionmaker[Session], sqlite_file: Path, clock: FakeClock
) -> None:
    operators = _service(sqlite_sessions, clock)
    staff = Staff(operators, clock)
    admin = staff.admin()
    created = operators.create_operator(
        admin.operator, dealer_id=DEALER, username="tina", display_name="Tina", role=Role.TECHNICIAN
    )
    enrolment = operators.begin_enrolment(DEALER, "tina", created.enrolment_code)

    _, pending = _raw_secrets(sqlite_file, created.operator.id)
    assert pending is not None and pending.startswith(SEALED_PREFIX)
    assert enrolment.secret not in pending

    operators.complete_enrolment(
        DEALER,
        "tina",
        created.enrolment_code,
        "a long enough passphrase",
        code_at(enrolment.secret, clock()),
    )
    clock.advance(30)
    confirmed, pending = _raw_secrets(sqlite_file, created.operator.id)
    assert pending is None
    assert confirmed is not None and confirmed.startswith(SEALED_PREFIX)
    assert enrolment.secret not in confirmed

    result = operators.login(
        DEALER, "tina", "a long enough passphrase", code_at(enrolment.secret, clock())
    )
    assert result.operator.totp_enrolled
    for path in sqlite_file.parent.glob("edge.sqlite3*"):  # the database, its WAL and shm
        data = path.read_bytes()
        for secret in (enrolment.secret, admin.totp_secret):
            assert secret.encode() not in data, path.name


def test_each_seal_of_the_same_secret_differs_and_opens_only_for_its_operator() -> None:
    key = TotpKey.generate()
    first, second = key.seal("op-1", "JBSWY3DPEHPK3PXP"), key.seal("op-1", "JBSWY3DPEHPK3PXP")
    assert first != second  # a fresh nonce each time: equal secrets are not visible as equal
    assert key.open("op-1", first) == key.open("op-1", second) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(TotpSecretUnreadable) as caught:
        key.open("op-2", first)
    assert caught.value.reason == "tag_mismatch"
    assert "JBSWY3DPEHPK3PXP" not in str(caught.value) and first not in str(caught.value)


# -- refusals -------------------------------------------------------------------------------------


def test_a_ciphertext_swapped_into_another_operators_row_is_refused_logged_and_not_counted(
    sessions: sessionmaker[Session], operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tina, tom = staff.hire(Role.TECHNICIAN), staff.hire(Role.TECHNICIAN)
    _set_secret(sessions, tom.operator.id, _stored(sessions, tina.operator.id).totp_secret or "")

    with capture_logs() as events, pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, tom.operator.username, tom.password, tina.code())

    assert caught.value.reason == "totp_unreadable"
    unreadable = [e for e in events if e["event"] == "totp_secret_unreadable"]
    assert unreadable == [
        {
            "event": "totp_secret_unreadable",
            "operator_id": tom.operator.id,
            "reason": "tag_mismatch",
            "log_level": "error",
            "component": "edge.operators",
        }
    ]
    assert tina.totp_secret not in repr(events) and tom.totp_secret not in repr(events)
    assert _stored(sessions, tom.operator.id).failed_attempts == 0  # the box's fault, not a guess
    operators.login(DEALER, tina.operator.username, tina.password, tina.code())  # hers still works


def test_secrets_sealed_under_another_key_are_refused_and_the_right_key_still_opens_them(
    sessions: sessionmaker[Session], staff: Staff, clock: FakeClock
) -> None:
    tina = staff.hire(Role.TECHNICIAN)
    stranger = _service(sessions, clock, TotpKey.generate())
    with pytest.raises(AuthenticationFailed) as caught:
        stranger.login(DEALER, tina.operator.username, tina.password, tina.code())
    assert caught.value.reason == "totp_unreadable"

    rightful = _service(sessions, clock)  # the key bound to the sessions
    rightful.login(DEALER, tina.operator.username, tina.password, tina.code())


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda v: v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1], "tag_mismatch"),
        (lambda v: v[: len(SEALED_PREFIX) + 8], "malformed"),
        (lambda v: SEALED_PREFIX + "!!!not base64!!!", "malformed"),
        (lambda _v: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "not_sealed"),  # a clear value put back
    ],
    ids=["one-character-altered", "truncated", "not-base64", "clear-value"],
)
def test_an_altered_stored_secret_refuses_sign_in_with_a_precise_reason(
    sessions: sessionmaker[Session],
    operators: OperatorService,
    staff: Staff,
    mangle: Callable[[str], str],
    reason: str,
) -> None:
    tina = staff.hire(Role.TECHNICIAN)
    stored = _stored(sessions, tina.operator.id).totp_secret
    assert stored is not None
    _set_secret(sessions, tina.operator.id, mangle(stored))
    with capture_logs() as events, pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, tina.operator.username, tina.password, tina.code())
    assert caught.value.reason == "totp_unreadable"
    logged = [e["reason"] for e in events if e["event"] == "totp_secret_unreadable"]
    assert logged == [reason]


def test_step_up_with_an_unreadable_secret_is_refused(
    sessions: sessionmaker[Session], operators: OperatorService, staff: Staff
) -> None:
    senior = staff.hire(Role.SENIOR_TECHNICIAN)
    _set_secret(sessions, senior.operator.id, TotpKey.generate().seal(senior.operator.id, "A" * 32))
    with pytest.raises(AuthenticationFailed) as caught:
        operators.verify_step_up(senior.operator, senior.code())
    assert caught.value.reason == "totp_unreadable"


def test_unreadable_pending_secrets_refuse_enrolment_and_a_new_one_replaces_them(
    sessions: sessionmaker[Session], operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    admin = staff.admin()
    created = operators.create_operator(
        admin.operator, dealer_id=DEALER, username="tom", display_name="Tom", role=Role.TECHNICIAN
    )
    enrolment = operators.begin_enrolment(DEALER, "tom", created.enrolment_code)
    foreign = TotpKey.generate().seal(created.operator.id, enrolment.secret)
    with sessions.begin() as s:
        s.get_one(EdgeOperator, created.operator.id).totp_pending_secret = foreign

    with pytest.raises(EnrolmentRefused) as caught:
        operators.complete_enrolment(
            DEALER, "tom", created.enrolment_code, "a long enough passphrase",
            code_at(enrolment.secret, clock()),
        )  # fmt: skip
    assert caught.value.reason == "totp_unreadable"

    again = operators.begin_enrolment(DEALER, "tom", created.enrolment_code)
    operators.complete_enrolment(
        DEALER, "tom", created.enrolment_code, "a long enough passphrase",
        code_at(again.secret, clock()),
    )  # fmt: skip
    assert operators.get(created.operator.id).totp_enrolled


def test_an_unreadable_pending_secret_refuses_the_totp_reset_confirmation(
    sessions: sessionmaker[Session], operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tina: Person = staff.hire(Role.TECHNICIAN)
    enrolment = operators.begin_totp_enrolment(tina.operator)
    with sessions.begin() as s:
        row = s.get_one(EdgeOperator, tina.operator.id)
        row.totp_pending_secret = TotpKey.generate().seal(tina.operator.id, enrolment.secret)
    with pytest.raises(TotpEnrolmentError, match="unreadable"):
        operators.confirm_totp_enrolment(tina.operator, code_at(enrolment.secret, clock()))
    clock.advance(30)
    operators.login(DEALER, tina.operator.username, tina.password, tina.code())  # the old one


def test_a_totp_reset_stores_the_new_secret_sealed_and_it_signs_in(
    sessions: sessionmaker[Session], operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tina = staff.hire(Role.TECHNICIAN)
    enrolment = operators.begin_totp_enrolment(tina.operator)
    pending = _stored(sessions, tina.operator.id).totp_pending_secret
    assert pending is not None and enrolment.secret not in pending
    operators.confirm_totp_enrolment(tina.operator, code_at(enrolment.secret, clock()))
    clock.advance(30)
    stored = _stored(sessions, tina.operator.id).totp_secret
    assert stored == pending  # moved, still sealed for the same operator
    operators.login(
        DEALER, tina.operator.username, tina.password, code_at(enrolment.secret, clock())
    )


# -- the key file ---------------------------------------------------------------------------------


def test_the_key_file_is_created_once_0600_and_read_back(tmp_path: Path) -> None:
    with capture_logs() as events:
        created = TotpKey.load_or_create(tmp_path)
    path = tmp_path / TOTP_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == created.secret and len(created.secret) == 32
    assert TotpKey.load_or_create(tmp_path) == created
    assert created.secret.hex() not in repr(events) and repr(created) == "TotpKey()"


@pytest.mark.parametrize(
    ("content", "mode", "reason"),
    [
        (b"k" * 32, 0o644, "readable by others than the edge (want 0600)"),
        (b"k" * 31, 0o600, "holds 31 bytes, not a 32-byte key"),
    ],
    ids=["world-readable", "wrong-size"],
)
def test_a_key_file_this_edge_did_not_write_is_refused_and_left_alone(
    tmp_path: Path, content: bytes, mode: int, reason: str
) -> None:
    path = tmp_path / TOTP_KEY_FILE
    path.write_bytes(content)
    path.chmod(mode)
    with pytest.raises(TotpKeyError) as caught:
        TotpKey.load_or_create(tmp_path)
    assert caught.value.reason == reason
    assert path.read_bytes() == content and stat.S_IMODE(path.stat().st_mode) == mode
