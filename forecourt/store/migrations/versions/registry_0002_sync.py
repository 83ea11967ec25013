"""Registry: what edges sync up, and the edge ledger keys the OEM registers.

``registry_sync_events`` holds every pushed CloudEvent once (its id is the primary key);
``registry_consent_records`` (append-only) and ``registry_consent_propagation`` keep the customer's
choices as Fides does; ``registry_software_history`` is the UNECE R156 record of every ECU's
software before and after each change; ``registry_ledger_keys`` binds an edge ledger's key to a
dealer and an edge.

Revision ID: registry_0002
Revises: registry_0001
Create Date: 2025-02-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0002"
down_revision: str | None = "registry_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_sync_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("edge", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_registry_sync_events")),
    )
    op.create_index(
        op.f("ix_registry_sync_events_dealer_id"), "registry_sync_events", ["dealer_id"]
    )
    op.create_index(op.f("ix_registry_sync_events_subject"), "registry_sync_events", ["subject"])
    op.create_table(
        "registry_consent_records",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("subject_sha256", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.Column("notice_id", sa.String(length=64), nullable=False),
        sa.Column("notice_version", sa.String(length=32), nullable=False),
        sa.Column("mechanism", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("supersedes_id", sa.String(length=64), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["registry_sync_events.event_id"],
            name=op.f("fk_registry_consent_records_event_id_registry_sync_events"),
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["registry_consent_records.record_id"],
            name=op.f("fk_registry_consent_records_supersedes_id_registry_consent_records"),
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_registry_consent_records")),
    )
    op.create_index(
        op.f("ix_registry_consent_records_event_id"), "registry_consent_records", ["event_id"]
    )
    op.create_index(op.f("ix_registry_consent_records_vin"), "registry_consent_records", ["vin"])
    op.create_table(
        "registry_consent_propagation",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["registry_consent_records.record_id"],
            name=op.f("fk_registry_consent_propagation_record_id_registry_consent_records"),
        ),
        sa.PrimaryKeyConstraint(
            "record_id", "system", name=op.f("pk_registry_consent_propagation")
        ),
    )
    op.create_table(
        "registry_software_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ecu_serial", sa.String(length=64), nullable=False),
        sa.Column("ecu_address", sa.String(length=8), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("change_ref", sa.String(length=64), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["registry_sync_events.event_id"],
            name=op.f("fk_registry_software_history_event_id_registry_sync_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_software_history")),
        sa.UniqueConstraint(
            "event_id", "ecu_serial", name=op.f("uq_registry_software_history_event_id")
        ),
    )
    op.create_index(op.f("ix_registry_software_history_vin"), "registry_software_history", ["vin"])
    op.create_table(
        "registry_ledger_keys",
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("dealer_id", sa.String(length=32), nullable=False),
        sa.Column("edge", sa.String(length=64), nullable=False),
        sa.Column("vkey", sa.String(length=512), nullable=False),
        sa.Column("registered_by", sa.String(length=100), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["registry_dealers.dealer_id"],
            name=op.f("fk_registry_ledger_keys_dealer_id_registry_dealers"),
        ),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_registry_ledger_keys")),
        sa.UniqueConstraint("dealer_id", "edge", name=op.f("uq_registry_ledger_keys_dealer_id")),
    )


def downgrade() -> None:
    op.drop_table("registry_ledger_keys")
    op.drop_index(op.f("ix_registry_software_history_vin"), table_name="registry_software_history")
    op.drop_table("registry_software_history")
    op.drop_table("registry_consent_propagation")
    op.drop_index(op.f("ix_registry_consent_records_vin"), table_name="registry_consent_records")
    op.drop_index(
        op.f("ix_registry_consent_records_event_id"), table_name="registry_consent_records"
    )
    op.drop_table("registry_consent_records")
    op.drop_index(op.f("ix_registry_sync_events_subject"), table_name="registry_sync_events")
    op.drop_index(op.f("ix_registry_sync_events_dealer_id"), table_name="registry_sync_events")
    op.drop_table("registry_sync_events")
