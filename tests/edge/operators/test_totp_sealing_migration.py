"""edge_0004 seals the clear TOTP secrets of an existing edge database, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from forecourt.edge.operators import AuthenticationFailed, OperatorPolicy, OperatorService
from forecourt.edge.operators.sealing import (
    SEALED_PREFIX,
    TOTP_KEY_ATTRIBUTE,
    TotpKey,
    TotpMigrationError,
)
from forecourt.edge.operators.totp import code_at
from forecourt.store.engine import alembic_config, create_engine_for, migrate, session_factory
from tests.edge.operators.conftest import CHEAP, DEALER, PASSWORD

CONFIRMED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PENDING = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
AT = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def old_edge(db_url: str) -> Iterator[Engine]:
    """An edge database at edge_0003 holding clear secrets, as edges before sealing wrote them."""
    engine = create_engine_for(db_url)
    command.upgrade(alembic_config(engine), "edge_0003")
    hashed = CHEAP.hash(PASSWORD)
    with engine.begin() as conn:
        for op_id, name, secret, pending in (
            ("op-confirmed", "tina", CONFIRMED, None),
            ("op-pending", "tom", None, PENDING),
            ("op-resetting", "rita", CONFIRMED, PENDING),
            ("op-new", "nina", None, None),
        ):
            conn.execute(
                text(
                    "INSERT INTO edge_operators (id, dealer_id, username, display_name, role,"
                    " password_hash, totp_secret, totp_pending_secret, failed_attempts, active,"
                    " created_at, password_changed_at, awaiting_approval) VALUES (:id, :dealer,"
                    " :name, :name, 'technician', :hash, :secret, :pending, 0, true, :at, :at,"
                    " false)"
                ),
                {
                    "id": op_id,
                    "dealer": DEALER,
                    "name": name,
                    "hash": hashed,
                    "secret": secret,
                    "pending": pending,
                    "at": AT,
                },
            )
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT id, totp_secret, totp_pending_secret FROM edge_operators ORDER BY id")
        ).all()
    return {str(i): (s, p) for i, s, p in found}


def _version(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def test_the_migration_seals_every_clear_secret_and_sign_in_works_afterwards(
    old_edge: Engine,
) -> None:
    key = TotpKey.generate()
    migrate(old_edge, ("edge",), {TOTP_KEY_ATTRIBUTE: key})

    rows = _rows(old_edge)
    assert rows["op-new"] == (None, None)
    for op_id, (secret, pending) in rows.items():
        for value in (secret, pending):
            assert value is None or value.startswith(SEALED_PREFIX), op_id
            assert value is None or (CONFIRMED not in value and PENDING not in value)
    assert key.open("op-confirmed", rows["op-confirmed"][0] or "") == CONFIRMED
    assert key.open("op-pending", rows["op-pending"][1] or "") == PENDING
    assert key.open("op-resetting", rows["op-resetting"][1] or "") == PENDING
    assert _version(old_edge) == "edge_0004"

    sessions = session_factory(old_edge)
    operators = OperatorService(
        sessions, clock=lambda: AT, policy=OperatorPolicy(), passwords=CHEAP, totp_key=key
    )
    assert operators.login(DEALER, "tina", PASSWORD, code_at(CONFIRMED, AT)).operator.totp_enrolled
    operators.login(DEALER, "tom", PASSWORD, code_at(PENDING, AT))  # confirms the pending one

    migrate(old_edge, ("edge",), {TOTP_KEY_ATTRIBUTE: key})  # at head: changes nothing
    assert _rows(old_edge)["op-resetting"] == rows["op-resetting"]


def test_without_the_key_the_migration_is_refused_and_changes_nothing(old_edge: Engine) -> None:
    before = _rows(old_edge)
    with pytest.raises(TotpMigrationError, match="TOTP key was not given"):
        migrate(old_edge, ("edge",))
    assert _rows(old_edge) == before
    assert _version(old_edge) == "edge_0003"
    assert not [t for t in inspect(old_edge).get_table_names() if t.startswith("_alembic_tmp")]


def test_a_value_neither_clear_nor_sealed_rolls_back_the_rows_already_sealed(
    old_edge: Engine,
) -> None:
    with old_edge.begin() as conn:  # sorted last: the rows before it are sealed, then it fails
        conn.execute(
            text("UPDATE edge_operators SET totp_secret = 'not a secret' WHERE id = 'op-resetting'")
        )
    before = _rows(old_edge)

    with pytest.raises(TotpMigrationError) as caught:
        migrate(old_edge, ("edge",), {TOTP_KEY_ATTRIBUTE: TotpKey.generate()})

    assert caught.value.operator_id == "op-resetting" and "not a secret" not in str(caught.value)
    assert _rows(old_edge) == before  # op-confirmed and op-pending are clear again
    assert _version(old_edge) == "edge_0003"
    assert not [t for t in inspect(old_edge).get_table_names() if t.startswith("_alembic_tmp")]


def test_a_clear_secret_left_in_a_row_after_the_migration_is_refused_at_sign_in(
    old_edge: Engine,
) -> None:
    key = TotpKey.generate()
    migrate(old_edge, ("edge",), {TOTP_KEY_ATTRIBUTE: key})
    with old_edge.begin() as conn:  # written by hand, past the service
        conn.execute(
            text("UPDATE edge_operators SET totp_secret = :s WHERE id = 'op-confirmed'"),
            {"s": CONFIRMED},
        )
    operators = OperatorService(
        session_factory(old_edge), clock=lambda: AT, passwords=CHEAP, totp_key=key
    )
    with pytest.raises(AuthenticationFailed) as caught:
        operators.login(DEALER, "tina", PASSWORD, code_at(CONFIRMED, AT))
    assert caught.value.reason == "totp_unreadable"


def test_downgrade_opens_the_secrets_back_to_clear(old_edge: Engine) -> None:
    before = _rows(old_edge)
    key = TotpKey.generate()
    migrate(old_edge, ("edge",), {TOTP_KEY_ATTRIBUTE: key})
    cfg = alembic_config(old_edge)
    cfg.attributes[TOTP_KEY_ATTRIBUTE] = key
    command.downgrade(cfg, "edge_0003")
    assert _rows(old_edge) == before
    assert _version(old_edge) == "edge_0003"
