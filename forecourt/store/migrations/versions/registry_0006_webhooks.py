"""Registry: signed webhooks to partner systems (owner app, digital key, after-sales CRM).

``registry_webhook_subscriptions`` and their sealed signing secrets (several during a rotation's
grace period); ``registry_outbox_events``, written in the transaction of the change that causes
each event; ``registry_webhook_deliveries``, one per event and subscription, claimed by delivery
workers and kept (delivered, dead-lettered or cancelled) for operators to inspect.

Revision ID: registry_0006
Revises: registry_0005
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "registry_0006"
down_revision: str | None = "registry_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_webhook_subscriptions",
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_registry_webhook_subscriptions")),
    )
    op.create_table(
        "registry_webhook_secrets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["registry_webhook_subscriptions.subscription_id"],
            name=op.f("fk_registry_webhook_secrets_subscription_id_registry_webhook_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_webhook_secrets")),
    )
    op.create_index(
        op.f("ix_registry_webhook_secrets_subscription_id"),
        "registry_webhook_secrets",
        ["subscription_id"],
    )
    op.create_table(
        "registry_outbox_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_registry_outbox_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_registry_outbox_events_event_id")),
    )
    op.create_index(
        op.f("ix_registry_outbox_events_dispatched_at"),
        "registry_outbox_events",
        ["dispatched_at"],
    )
    op.create_table(
        "registry_webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_seq"],
            ["registry_outbox_events.seq"],
            name=op.f("fk_registry_webhook_deliveries_event_seq_registry_outbox_events"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["registry_webhook_subscriptions.subscription_id"],
            name=op.f(
                "fk_registry_webhook_deliveries_subscription_id_registry_webhook_subscriptions"
            ),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_webhook_deliveries")),
        sa.UniqueConstraint(
            "event_seq",
            "subscription_id",
            name=op.f("uq_registry_webhook_deliveries_event_seq"),
        ),
    )
    op.create_index(
        "ix_registry_webhook_deliveries_due",
        "registry_webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        op.f("ix_registry_webhook_deliveries_subscription_id"),
        "registry_webhook_deliveries",
        ["subscription_id"],
    )


def downgrade() -> None:
    op.drop_table("registry_webhook_deliveries")
    op.drop_table("registry_outbox_events")
    op.drop_table("registry_webhook_secrets")
    op.drop_table("registry_webhook_subscriptions")
