"""Registry: operators scoped per edge, and an audit of authority changes.

``registry_dealer_operators`` (one list per dealer, replaced by whichever edge pushed last) is
dropped for ``registry_edge_operators`` (one list per dealer *and* edge, with the role OEM staff
confirmed); its rows are not carried over because they cannot be attributed to an edge: each
edge pushes its list again on its next sync. ``registry_audit`` records every change to operators
and entitlements with its actor. Entitlement references become unique per issuer (the dealer
that purchased, ``oem`` otherwise) and a VIN holds at most one trial per feature.

Revision ID: registry_0003
Revises: registry_0002
Create Date: 2025-03-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0003"
down_revision: str | None = "registry_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("registry_dealer_operators")
    op.create_table(
        "registry_edge_operators",
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("edge", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("confirmed_role", sa.String(length=32), nullable=True),
        sa.Column("confirmed_by", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["registry_dealers.dealer_id"],
            name=op.f("fk_registry_edge_operators_dealer_id_registry_dealers"),
        ),
        sa.PrimaryKeyConstraint(
            "dealer_id", "edge", "operator_id", name=op.f("pk_registry_edge_operators")
        ),
    )
    op.create_table(
        "registry_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=True),
        sa.Column("edge", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_audit")),
    )
    op.create_index(op.f("ix_registry_audit_dealer_id"), "registry_audit", ["dealer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_registry_audit_dealer_id"), table_name="registry_audit")
    op.drop_table("registry_audit")
    op.drop_table("registry_edge_operators")
    op.create_table(
        "registry_dealer_operators",
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["registry_dealers.dealer_id"],
            name=op.f("fk_registry_dealer_operators_dealer_id_registry_dealers"),
        ),
        sa.PrimaryKeyConstraint(
            "dealer_id", "operator_id", name=op.f("pk_registry_dealer_operators")
        ),
    )
