"""Edge: operators' TOTP secrets sealed at rest (AES-256-GCM under the edge's TOTP key).

Both secret columns are widened to 128 characters (a sealed 32-character secret is 88) and every
clear value still in them is sealed for its operator (:mod:`forecourt.edge.operators.sealing`).
The key arrives in ``config.attributes`` (``TOTP_KEY_ATTRIBUTE``), put there by the edge when it
migrates; a database without clear values needs none.

One transaction: PostgreSQL's DDL is transactional; on SQLite the driver would run the table
rebuild of ``batch_alter_table`` outside any transaction, so one is opened explicitly first. A
refusal (no key, a value that is neither a base32 secret nor sealed) rolls everything back:
columns, converted rows and the revision stamp alike.

Revision ID: edge_0004
Revises: edge_0003
Create Date: 2025-03-01 00:00:00
"""

import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from forecourt.edge.operators.errors import TotpSecretUnreadable
from forecourt.edge.operators.sealing import (
    TOTP_KEY_ATTRIBUTE,
    TotpKey,
    TotpMigrationError,
    is_sealed,
)

revision: str = "edge_0004"
down_revision: str | None = "edge_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("totp_secret", "totp_pending_secret")
_CLEAR = re.compile(r"[A-Z2-7]{16,64}=*")
#: Rewrites one stored value of one operator (``_seal`` going up, ``_open`` going down).
_Change = Callable[[TotpKey, str, str], str]
_operators = sa.table(
    "edge_operators",
    sa.column("id", sa.String()),
    sa.column("totp_secret", sa.String()),
    sa.column("totp_pending_secret", sa.String()),
)


def upgrade() -> None:
    _begin_transaction()
    _resize(sa.String(length=64), sa.String(length=128))
    _convert(_seal)


def downgrade() -> None:
    _begin_transaction()
    _convert(_open)
    _resize(sa.String(length=128), sa.String(length=64))


def _begin_transaction() -> None:
    """On SQLite, open the driver's transaction now, so the table rebuild is inside it too."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if not getattr(bind.connection.dbapi_connection, "in_transaction", True):
        bind.exec_driver_sql("BEGIN")


def _resize(old: sa.String, new: sa.String) -> None:
    with op.batch_alter_table("edge_operators") as batch:
        for column in _COLUMNS:
            batch.alter_column(column, existing_type=old, type_=new, existing_nullable=True)


def _convert(change: _Change) -> None:
    """Rewrite each non-empty secret through ``change``; the key is fetched only when needed."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_operators.c.id, _operators.c.totp_secret, _operators.c.totp_pending_secret)
        .where(
            sa.or_(
                _operators.c.totp_secret.is_not(None), _operators.c.totp_pending_secret.is_not(None)
            )
        )
        .order_by(_operators.c.id)
    ).all()
    key: TotpKey | None = None
    for operator_id, *stored in rows:
        values: dict[str, str | None] = {}
        for column, value in zip(_COLUMNS, stored, strict=True):
            if value is None:
                continue
            key = key or _key()
            converted = change(key, str(operator_id), str(value))
            if converted != value:
                values[column] = converted
        if values:
            bind.execute(
                sa.update(_operators).where(_operators.c.id == operator_id).values(**values)
            )


def _seal(key: TotpKey, operator_id: str, value: str) -> str:
    if is_sealed(value):
        return value
    if not _CLEAR.fullmatch(value):
        raise TotpMigrationError(
            "a stored value is neither a base32 secret nor sealed", operator_id
        )
    return key.seal(operator_id, value)


def _open(key: TotpKey, operator_id: str, value: str) -> str:
    if not is_sealed(value):
        return value
    try:
        return key.open(operator_id, value)
    except TotpSecretUnreadable as exc:
        raise TotpMigrationError(
            f"a sealed value does not open ({exc.reason})", operator_id
        ) from None


def _key() -> TotpKey:
    config = op.get_context().config
    key = None if config is None else config.attributes.get(TOTP_KEY_ATTRIBUTE)
    if not isinstance(key, TotpKey):
        raise TotpMigrationError(
            f"the edge's TOTP key was not given (config.attributes[{TOTP_KEY_ATTRIBUTE!r}])"
        )
    return key
