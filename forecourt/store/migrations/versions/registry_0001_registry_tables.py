"""Registry tables of the cloud: dealers, operators, certificates, vehicles, ECUs, catalog,
entitlements, versioned compliance profiles, activations, offline packages, API tokens.

The first revision of the ``registry`` branch; it starts from an empty database (SQLite or
PostgreSQL). ``uq_registry_activations_open_vin`` is what lets only one activation per car be open.

Revision ID: registry_0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("registry",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_activations",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("open_vin", sa.String(length=17), nullable=True),
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activation_counter", sa.BigInteger(), nullable=True),
        sa.Column("bundle", sa.LargeBinary(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_registry_activations")),
        sa.UniqueConstraint("open_vin", name=op.f("uq_registry_activations_open_vin")),
    )
    op.create_index(
        op.f("ix_registry_activations_vin"), "registry_activations", ["vin"], unique=False
    )
    op.create_table(
        "registry_api_tokens",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_registry_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_registry_api_tokens_token_hash")),
    )
    op.create_table(
        "registry_compliance_profiles",
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("market", "version", name=op.f("pk_registry_compliance_profiles")),
    )
    op.create_table(
        "registry_dealers",
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("dealer_id", name=op.f("pk_registry_dealers")),
    )
    op.create_table(
        "registry_features",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_registry_features")),
    )
    op.create_table(
        "registry_packages",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_registry_packages")),
    )
    op.create_index(
        op.f("ix_registry_packages_sha256"), "registry_packages", ["sha256"], unique=False
    )
    op.create_table(
        "registry_dealer_certificates",
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["registry_dealers.dealer_id"],
            name=op.f("fk_registry_dealer_certificates_dealer_id_registry_dealers"),
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_registry_dealer_certificates")),
    )
    op.create_index(
        op.f("ix_registry_dealer_certificates_dealer_id"),
        "registry_dealer_certificates",
        ["dealer_id"],
        unique=False,
    )
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
    op.create_table(
        "registry_vehicles",
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("model_year", sa.Integer(), nullable=False),
        sa.Column("plant", sa.String(length=32), nullable=False),
        sa.Column("build_date", sa.Date(), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("option_codes", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=True),
        sa.Column("owner_ref", sa.String(length=64), nullable=True),
        sa.Column("activation_counter", sa.BigInteger(), nullable=False),
        sa.Column("offline_counter", sa.BigInteger(), nullable=False),
        sa.Column("feed_digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["registry_dealers.dealer_id"],
            name=op.f("fk_registry_vehicles_dealer_id_registry_dealers"),
        ),
        sa.PrimaryKeyConstraint("vin", name=op.f("pk_registry_vehicles")),
    )
    op.create_index(
        op.f("ix_registry_vehicles_dealer_id"), "registry_vehicles", ["dealer_id"], unique=False
    )
    op.create_table(
        "registry_ecus",
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("logical_address", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("hardware_number", sa.String(length=64), nullable=False),
        sa.Column("software_version", sa.String(length=64), nullable=False),
        sa.Column("signing_public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sealing_public_key", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vin"], ["registry_vehicles.vin"], name=op.f("fk_registry_ecus_vin_registry_vehicles")
        ),
        sa.PrimaryKeyConstraint("vin", "role", name=op.f("pk_registry_ecus")),
    )
    op.create_table(
        "registry_entitlements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("feature_code", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vin"],
            ["registry_vehicles.vin"],
            name=op.f("fk_registry_entitlements_vin_registry_vehicles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_entitlements")),
        sa.UniqueConstraint("reference", name=op.f("uq_registry_entitlements_reference")),
    )
    op.create_index(
        op.f("ix_registry_entitlements_vin"), "registry_entitlements", ["vin"], unique=False
    )
    op.create_table(
        "registry_offline_packages",
        sa.Column("package_id", sa.String(length=64), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bundle", sa.LargeBinary(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("uses", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vin"],
            ["registry_vehicles.vin"],
            name=op.f("fk_registry_offline_packages_vin_registry_vehicles"),
        ),
        sa.PrimaryKeyConstraint("package_id", name=op.f("pk_registry_offline_packages")),
    )
    op.create_index(
        op.f("ix_registry_offline_packages_dealer_id"),
        "registry_offline_packages",
        ["dealer_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_registry_offline_packages_vin"), "registry_offline_packages", ["vin"], unique=False
    )


def downgrade() -> None:
    op.drop_table("registry_offline_packages")
    op.drop_table("registry_entitlements")
    op.drop_table("registry_ecus")
    op.drop_table("registry_vehicles")
    op.drop_table("registry_dealer_operators")
    op.drop_table("registry_dealer_certificates")
    op.drop_table("registry_packages")
    op.drop_table("registry_features")
    op.drop_table("registry_dealers")
    op.drop_table("registry_compliance_profiles")
    op.drop_table("registry_api_tokens")
    op.drop_table("registry_activations")
