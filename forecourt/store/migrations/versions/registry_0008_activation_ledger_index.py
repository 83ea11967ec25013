"""Registry: an applied activation names its record in the cloud's Merkle log.

``registry_activations.ledger_index`` is NULL until the ledger follower has appended the
activation's record, then the record's index. The partial index holds only applied activations
not logged yet, so the follower's periodic look-up stays small however many activations the
table keeps, and the authorisation itself writes nothing more than before.

Revision ID: registry_0008
Revises: registry_0007
Create Date: 2026-11-26 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0008"
down_revision: str | None = "registry_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNLOGGED = "status = 'applied' AND ledger_index IS NULL"


def upgrade() -> None:
    op.add_column("registry_activations", sa.Column("ledger_index", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_registry_activations_unlogged",
        "registry_activations",
        ["created_at"],
        unique=False,
        sqlite_where=sa.text(_UNLOGGED),
        postgresql_where=sa.text(_UNLOGGED),
    )


def downgrade() -> None:
    op.drop_index("ix_registry_activations_unlogged", table_name="registry_activations")
    with op.batch_alter_table("registry_activations") as batch:
        batch.drop_column("ledger_index")
