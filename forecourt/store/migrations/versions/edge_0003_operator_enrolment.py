"""Edge: one-time enrolment codes and roles awaiting a second operator's approval.

Revision ID: edge_0003
Revises: edge_0002
Create Date: 2025-02-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "edge_0003"
down_revision: str | None = "edge_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("edge_operators") as batch:
        batch.add_column(sa.Column("enrolment_code_sha256", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("enrolment_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("pending_role", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("awaiting_approval", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("edge_operators") as batch:
        batch.drop_column("awaiting_approval")
        batch.drop_column("pending_role")
        batch.drop_column("enrolment_expires_at")
        batch.drop_column("enrolment_code_sha256")
