"""Rotating the edge's TOTP key: every secret re-sealed, sign-in unbroken, crashes lose nothing."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs
from typer.testing import CliRunner

from forecourt.edge.cli import app
from forecourt.edge.operators import OperatorPolicy, OperatorService, Role
from forecourt.edge.operators.errors import TotpSecretUnreadable
from forecourt.edge.operators.sealing import (
    PENDING_KEY_FILE,
    RETIRED_KEY_FILE,
    SEALED_PREFIX,
    TOTP_KEY_FILE,
    TotpKey,
    rotate_totp_key,
)
from forecourt.edge.operators.totp import code_at
from forecourt.store.edge import EdgeOperator
from forecourt.store.engine import create_engine_for, session_factory
from tests.edge.operators.conftest import (
    CHEAP,
    DEALER,
    PASSWORD,
    FakeClock,
    Person,
    Staff,
    migrate_edge,
)

runner = CliRunner()


@dataclass
class Box:
    """An edge's data directory and database with an enrolled admin, a technician, and one
    operator half-way through enrolment (a pending secret)."""

    data_dir: Path
    url: str
    sessions: sessionmaker[Session]
    clock: FakeClock
    people: list[Person]
    pending_code: str
    pending_secret: str

    def service(self) -> OperatorService:
        """The operator service as a freshly started edge builds it: keys from the files."""
        key = TotpKey.load_or_create(self.data_dir)
        return OperatorService(
            self.sessions,
            clock=self.clock,
            policy=OperatorPolicy(max_failed_attempts=3),
            passwords=CHEAP,
            totp_key=key,
        )

    def stored(self) -> dict[str, tuple[str | None, str | None]]:
        with self.sessions() as s:
            rows = s.scalars(select(EdgeOperator).order_by(EdgeOperator.id)).all()
            return {r.id: (r.totp_secret, r.totp_pending_secret) for r in rows}

    def key_bytes(self) -> bytes:
        return (self.data_dir / TOTP_KEY_FILE).read_bytes()

    def assert_everyone_signs_in(self) -> None:
        service = self.service()
        for person in self.people:
            self.clock.advance(30)  # each code is a fresh step
            signed_in = service.login(
                DEALER, person.operator.username, person.password, person.code()
            )
            assert signed_in.operator.id == person.operator.id


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    opened = create_engine_for(db_url)
    migrate_edge(opened)
    yield opened
    opened.dispose()


@pytest.fixture
def box(tmp_path: Path, db_url: str, engine: Engine) -> Box:
    data_dir = tmp_path / "edge"
    data_dir.mkdir()
    sessions = session_factory(engine)
    TotpKey.load_or_create(data_dir).bind(sessions)
    clock = FakeClock()
    operators = OperatorService(
        sessions, clock=clock, policy=OperatorPolicy(max_failed_attempts=3), passwords=CHEAP
    )
    staff = Staff(operators, clock)
    people = [staff.admin(), staff.hire(Role.TECHNICIAN)]
    created = operators.create_operator(
        people[0].operator, dealer_id=DEALER, username="newbie", display_name="N",
        role=Role.TECHNICIAN,
    )  # fmt: skip
    enrolment = operators.begin_enrolment(DEALER, "newbie", created.enrolment_code)
    return Box(data_dir, db_url, sessions, clock, people, created.enrolment_code, enrolment.secret)


def _finish_enrolment(box: Box) -> None:
    """The half-enrolled operator confirms with the authenticator set up before the rotation."""
    box.clock.advance(30)
    box.service().complete_enrolment(
        DEALER, "newbie", box.pending_code, PASSWORD, code_at(box.pending_secret, box.clock())
    )


def test_after_rotation_everyone_signs_in_and_the_old_key_opens_no_row(box: Box) -> None:
    old = TotpKey.load_or_create(box.data_dir)
    before = box.stored()

    with capture_logs() as events:
        rotation = rotate_totp_key(box.data_dir, box.sessions)

    new = TotpKey.load_or_create(box.data_dir)
    assert rotation.resealed == 3 and not rotation.resumed  # two confirmed, one pending
    assert (rotation.key_id, rotation.retired_key_id) == (new.key_id, old.key_id)
    assert new.secret != old.secret and new.readable == (old.secret,)
    after = box.stored()
    for operator_id, values in after.items():
        for value, previous in zip(values, before[operator_id], strict=True):
            assert (value is None) == (previous is None)
            if value is None:
                continue
            assert value.startswith(f"{SEALED_PREFIX}{new.key_id}:")
            with pytest.raises(TotpSecretUnreadable) as caught:
                TotpKey(old.secret).open(operator_id, value)
            assert caught.value.reason == "unknown_key"
    box.assert_everyone_signs_in()
    _finish_enrolment(box)

    for name in (TOTP_KEY_FILE, RETIRED_KEY_FILE):
        assert stat.S_IMODE((box.data_dir / name).stat().st_mode) == 0o600
    assert (box.data_dir / RETIRED_KEY_FILE).read_bytes() == old.secret
    assert not (box.data_dir / PENDING_KEY_FILE).exists()
    assert [e["event"] for e in events] == ["totp_key_rotated"]
    assert old.secret.hex() not in repr(events) and new.secret.hex() not in repr(events)


def test_a_second_rotation_retires_the_first_key_for_good(box: Box) -> None:
    first = TotpKey.load_or_create(box.data_dir)
    rotate_totp_key(box.data_dir, box.sessions)
    rotate_totp_key(box.data_dir, box.sessions)

    current = TotpKey.load_or_create(box.data_dir)
    assert first.secret not in (current.secret, *current.readable)
    box.assert_everyone_signs_in()


def test_a_crash_after_the_transaction_leaves_sign_in_working_and_a_rerun_finishes(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = box.key_bytes()

    def power_cut(data_dir: Path, current: bytes) -> None:
        raise OSError("power cut before the key file was switched")

    with monkeypatch.context() as patched:
        patched.setattr("forecourt.edge.operators.sealing._switch", power_cut)
        with pytest.raises(OSError, match="power cut"):
            rotate_totp_key(box.data_dir, box.sessions)

    # Rows are under the new key, the key file still holds the old one: the edge reads both.
    assert box.key_bytes() == old_key and (box.data_dir / PENDING_KEY_FILE).exists()
    box.assert_everyone_signs_in()

    pending = (box.data_dir / PENDING_KEY_FILE).read_bytes()
    rotation = rotate_totp_key(box.data_dir, box.sessions)
    assert rotation.resumed and box.key_bytes() == pending
    assert not (box.data_dir / PENDING_KEY_FILE).exists()
    box.assert_everyone_signs_in()
    _finish_enrolment(box)


def test_a_crash_inside_the_transaction_changes_no_row_and_sign_in_works(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, old_key = box.stored(), box.key_bytes()
    real_seal = TotpKey.seal
    calls: list[str] = []

    def seal_then_fail(self: TotpKey, operator_id: str, secret: str) -> str:
        calls.append(operator_id)
        if len(calls) == 2:
            raise RuntimeError("process killed mid-transaction")
        return real_seal(self, operator_id, secret)

    with monkeypatch.context() as patched:
        patched.setattr(TotpKey, "seal", seal_then_fail)
        with pytest.raises(RuntimeError, match="killed"):
            rotate_totp_key(box.data_dir, box.sessions)

    assert box.stored() == before and box.key_bytes() == old_key
    box.assert_everyone_signs_in()
    assert rotate_totp_key(box.data_dir, box.sessions).resealed == 3
    box.assert_everyone_signs_in()


# -- the command line -----------------------------------------------------------------------------


def _rotate(box: Box) -> tuple[int, str]:
    args = ["operator", "rotate-totp-key", "--data-dir", str(box.data_dir)]
    result = runner.invoke(app, [*args, "--database-url", box.url], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_the_command_rotates_and_says_what_it_did(box: Box) -> None:
    old_key = box.key_bytes()

    exit_code, output = _rotate(box)

    new = TotpKey.load_or_create(box.data_dir)
    assert exit_code == 0, output
    assert f"3 secrets re-sealed under key {new.key_id}" in output
    assert box.key_bytes() != old_key
    box.assert_everyone_signs_in()


def test_the_command_refuses_while_the_edge_serves_and_changes_nothing(box: Box) -> None:
    before, old_key = box.stored(), box.key_bytes()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    endpoint = {"url": f"http://127.0.0.1:{port}", "dealer_id": DEALER, "edge_id": "e"}
    (box.data_dir / "console.json").write_text(json.dumps(endpoint))

    with listener, capture_logs() as events:
        exit_code, output = _rotate(box)

    assert exit_code == 3, output
    assert f"the edge is running (http://127.0.0.1:{port})" in output
    assert box.stored() == before and box.key_bytes() == old_key
    assert not (box.data_dir / PENDING_KEY_FILE).exists()
    assert [e["event"] for e in events] == ["totp_key_rotation_refused"]

    # Stopped, the edge leaves console.json behind: nothing answers there any more.
    exit_code, output = _rotate(box)
    assert exit_code == 0, output


def test_a_secret_no_key_opens_refuses_the_rotation_and_changes_nothing(box: Box) -> None:
    victim = box.people[1].operator.id
    with box.sessions.begin() as s:
        s.get_one(EdgeOperator, victim).totp_secret = TotpKey.generate().seal(victim, "A" * 32)
    before, old_key = box.stored(), box.key_bytes()

    exit_code, output = _rotate(box)

    assert exit_code == 1, output
    assert (
        f"TOTP key not rotated (operator {victim}): a stored secret does not open (unknown_key)"
        in output
    )
    assert box.stored() == before and box.key_bytes() == old_key
    assert not (box.data_dir / PENDING_KEY_FILE).exists()
    assert not (box.data_dir / RETIRED_KEY_FILE).exists()


def test_without_a_key_file_there_is_nothing_to_rotate(tmp_path: Path, db_url: str) -> None:
    result = runner.invoke(
        app, ["operator", "rotate-totp-key", "--data-dir", str(tmp_path), "--database-url", db_url]
    )
    assert result.exit_code == 2, result.output
    assert "nothing to rotate" in result.output
    assert not (tmp_path / TOTP_KEY_FILE).exists()
