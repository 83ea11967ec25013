"""Edge: per-step evidence of workflows, dead outbox messages, images of offline packages.

Revision ID: edge_0002
Revises: edge_0001
Create Date: 2025-01-15 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "edge_0002"
down_revision: str | None = "edge_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edge_workflow_steps",
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("evidence_sha256", sa.String(length=64), nullable=False),
        sa.Column("ledger_index", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_edge_workflow_steps_seq_positive")),
        sa.CheckConstraint(
            "duration_ms >= 0", name=op.f("ck_edge_workflow_steps_duration_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["edge_activation_workflows.id"],
            name=op.f("fk_edge_workflow_steps_workflow_id_edge_activation_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", "seq", name=op.f("pk_edge_workflow_steps")),
        sa.UniqueConstraint("ledger_index", name=op.f("uq_edge_workflow_steps_ledger_index")),
    )
    with op.batch_alter_table("edge_outbox") as batch:
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("edge_offline_packages") as batch:
        batch.add_column(
            sa.Column("packages", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("edge_offline_packages") as batch:
        batch.drop_column("packages")
    with op.batch_alter_table("edge_outbox") as batch:
        batch.drop_column("dead_at")
    op.drop_table("edge_workflow_steps")
