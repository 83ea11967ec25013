"""Registry: entitlement references unique per issuer, and one trial per VIN and feature.

A purchase reference was unique across all dealers, so a dealer could look up (and be answered
with) another dealer's entitlement by its reference. References are now unique per ``issuer``
(the dealer that purchased; ``oem`` for the OEM's own grants, which existing rows become); a
partial unique index lets a VIN hold at most one trial of each feature, ever.

Revision ID: registry_0004
Revises: registry_0003
Create Date: 2025-03-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0004"
down_revision: str | None = "registry_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIAL = sa.text("source = 'trial'")


def upgrade() -> None:
    with op.batch_alter_table("registry_entitlements") as batch:
        batch.add_column(
            sa.Column("issuer", sa.String(length=32), nullable=False, server_default="oem")
        )
        batch.drop_constraint("uq_registry_entitlements_reference", type_="unique")
        batch.create_unique_constraint("uq_registry_entitlements_issuer", ["issuer", "reference"])
    op.create_index(
        "uq_registry_entitlements_one_trial",
        "registry_entitlements",
        ["vin", "feature_code"],
        unique=True,
        sqlite_where=_TRIAL,
        postgresql_where=_TRIAL,
    )


def downgrade() -> None:
    op.drop_index("uq_registry_entitlements_one_trial", table_name="registry_entitlements")
    with op.batch_alter_table("registry_entitlements") as batch:
        batch.drop_constraint("uq_registry_entitlements_issuer", type_="unique")
        batch.create_unique_constraint("uq_registry_entitlements_reference", ["reference"])
        batch.drop_column("issuer")
