"""Registry: the audit table indexed by subject and action.

A car's provable history (``GET /v1/vehicles/{vin}/history``) and the dossier find the car's
lifecycle changes in ``registry_audit`` by VIN (the subject) and action; without the index that
lookup reads the whole table, which grows with every registry change of every car.

Revision ID: registry_0007
Revises: registry_0006
Create Date: 2026-11-26 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "registry_0007"
down_revision: str | None = "registry_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_registry_audit_subject_action", "registry_audit", ["subject", "action"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_registry_audit_subject_action", table_name="registry_audit")
