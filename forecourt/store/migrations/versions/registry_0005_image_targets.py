"""Registry: image repository targets signed offline and published.

``registry_image_targets`` holds each published version of the image repository's targets
metadata (``cloud publish-image-targets``), signed offline by the image targets key(s); cloud
processes serve the newest version instead of signing image targets online.

Revision ID: registry_0005
Revises: registry_0004
Create Date: 2026-11-26 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0005"
down_revision: str | None = "registry_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_image_targets",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("metadata", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("target_count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_registry_image_targets")),
    )


def downgrade() -> None:
    op.drop_table("registry_image_targets")
