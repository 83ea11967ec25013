"""Edge tables: operators, sessions, dual review, workflow, outbox, offline stock, consent.

The first revision of the ``edge`` branch; it starts from an empty database (SQLite or PostgreSQL).
Column types are spelled with plain SQLAlchemy types so that the migration never changes when the
model code does.

Revision ID: edge_0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "edge_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("edge",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edge_operators",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dealer_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_pending_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "failed_attempts >= 0", name=op.f("ck_edge_operators_failed_attempts_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_operators")),
        sa.UniqueConstraint("dealer_id", "username", name="uq_edge_operators_dealer_username"),
    )
    op.create_index(
        op.f("ix_edge_operators_dealer_id"), "edge_operators", ["dealer_id"], unique=False
    )
    op.create_table(
        "edge_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_edge_outbox_event_id")),
    )
    op.create_index(
        "ix_edge_outbox_pending", "edge_outbox", ["sent_at", "next_attempt_at"], unique=False
    )
    op.create_table(
        "edge_consent_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dealer_id", sa.String(length=64), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("subject_sha256", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("mechanism", sa.String(length=16), nullable=False),
        sa.Column("notice_id", sa.String(length=64), nullable=False),
        sa.Column("notice_version", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("operator_id", sa.String(length=36), nullable=True),
        sa.Column("supersedes_id", sa.String(length=36), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["edge_operators.id"],
            name=op.f("fk_edge_consent_records_operator_id_edge_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["edge_consent_records.id"],
            name=op.f("fk_edge_consent_records_supersedes_id_edge_consent_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_consent_records")),
    )
    op.create_index(
        "ix_edge_consent_records_vin_purpose",
        "edge_consent_records",
        ["vin", "purpose"],
        unique=False,
    )
    op.create_table(
        "edge_review_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dealer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requester_id", sa.String(length=36), nullable=False),
        sa.Column("reviewer_id", sa.String(length=36), nullable=True),
        sa.Column("executor_id", sa.String(length=36), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "reviewer_id IS NULL OR reviewer_id <> requester_id",
            name=op.f("ck_edge_review_requests_reviewer_not_requester"),
        ),
        sa.ForeignKeyConstraint(
            ["executor_id"],
            ["edge_operators.id"],
            name=op.f("fk_edge_review_requests_executor_id_edge_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["edge_operators.id"],
            name=op.f("fk_edge_review_requests_requester_id_edge_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["edge_operators.id"],
            name=op.f("fk_edge_review_requests_reviewer_id_edge_operators"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_review_requests")),
    )
    op.create_index(
        "ix_edge_review_requests_dealer_state",
        "edge_review_requests",
        ["dealer_id", "state"],
        unique=False,
    )
    op.create_table(
        "edge_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("operator_id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["edge_operators.id"],
            name=op.f("fk_edge_sessions_operator_id_edge_operators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_sessions")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_edge_sessions_token_sha256")),
    )
    op.create_index(
        op.f("ix_edge_sessions_operator_id"), "edge_sessions", ["operator_id"], unique=False
    )
    op.create_table(
        "edge_activation_workflows",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dealer_id", sa.String(length=64), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.String(length=36), nullable=False),
        sa.Column("review_request_id", sa.String(length=36), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["edge_operators.id"],
            name=op.f("fk_edge_activation_workflows_operator_id_edge_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["review_request_id"],
            ["edge_review_requests.id"],
            name=op.f("fk_edge_activation_workflows_review_request_id_edge_review_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_activation_workflows")),
    )
    op.create_index(
        "ix_edge_activation_workflows_vin_state",
        "edge_activation_workflows",
        ["vin", "state"],
        unique=False,
    )
    op.create_table(
        "edge_offline_packages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dealer_id", sa.String(length=64), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("counter", sa.Integer(), nullable=False),
        sa.Column("bundle", sa.LargeBinary(), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by_operator_id", sa.String(length=36), nullable=True),
        sa.Column("review_request_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "state <> 'used' OR used_at IS NOT NULL",
            name=op.f("ck_edge_offline_packages_used_has_time"),
        ),
        sa.ForeignKeyConstraint(
            ["review_request_id"],
            ["edge_review_requests.id"],
            name=op.f("fk_edge_offline_packages_review_request_id_edge_review_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["used_by_operator_id"],
            ["edge_operators.id"],
            name=op.f("fk_edge_offline_packages_used_by_operator_id_edge_operators"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_offline_packages")),
        sa.UniqueConstraint("bundle_sha256", name=op.f("uq_edge_offline_packages_bundle_sha256")),
    )
    op.create_index(
        "ix_edge_offline_packages_vin_state",
        "edge_offline_packages",
        ["vin", "state"],
        unique=False,
    )


def downgrade() -> None:
    # Dropping a table drops its indexes too.
    op.drop_table("edge_offline_packages")
    op.drop_table("edge_activation_workflows")
    op.drop_table("edge_sessions")
    op.drop_table("edge_review_requests")
    op.drop_table("edge_consent_records")
    op.drop_table("edge_outbox")
    op.drop_table("edge_operators")
