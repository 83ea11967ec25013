"""The dealer edge's tables: operators and their sessions, dual review, workflow state, outbox,
offline package stock and consent records.

Every table is prefixed ``edge_`` because the cloud's tables hang off the same
:class:`~forecourt.store.base.Base` and both parts may share one PostgreSQL in tests.

Invariants the schema keeps on its own, whatever code writes to it:

* an operator's username is unique within a dealer, never across dealers' scopes;
* a session is found only by the SHA-256 of its token (the token itself is never stored);
* a review request records requester and reviewer as two columns, and a check constraint refuses a
  row where they are the same operator (four-eyes, enforced again by the database);
* an offline package is used at most once (``used_at`` set once, state ``used``);
* consent rows are append-only: a withdrawal is a new row that names the row it supersedes;
* a workflow's steps are numbered 1, 2, 3 ... without a gap or a repeat (primary key), and each
  names the ledger entry that records it, so "every step is in the ledger exactly once" is a join;
* an outbox message is either pending, sent (``sent_at``) or dead (``dead_at``: the receiver refused
  it for good), never two of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.store.base import Base, UTCDateTime

#: Lengths shared by the migration and the models.
ID_LEN = 36  # a UUID in its canonical text form
DEALER_ID_LEN = 64
USERNAME_LEN = 64
VIN_LEN = 17  # ISO 3779
SHA256_HEX_LEN = 64


class EdgeOperator(Base):
    """A person who works the dealer's edge box, scoped to one dealer."""

    __tablename__ = "edge_operators"
    __table_args__ = (
        UniqueConstraint("dealer_id", "username", name="uq_edge_operators_dealer_username"),
        CheckConstraint("failed_attempts >= 0", name="failed_attempts_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(DEALER_ID_LEN), index=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LEN))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(256))
    #: Confirmed TOTP secret, sealed (``forecourt.edge.operators.sealing``); None until the first
    #: valid code confirms enrolment.
    totp_secret: Mapped[str | None] = mapped_column(String(128))
    #: Secret shown at enrolment (sealed), not yet confirmed by a first valid code.
    totp_pending_secret: Mapped[str | None] = mapped_column(String(128))
    #: Highest RFC 6238 time step accepted so far: a code at or below it is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: SHA-256 of the one-time enrolment code the creator hands over; None once used.
    enrolment_code_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX_LEN))
    #: The enrolment code is refused after this instant.
    enrolment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: A reviewer-capable role waiting for a second operator's approval (``operator_privilege``).
    pending_role: Mapped[str | None] = mapped_column(String(32))
    #: True while a new account's role awaits approval: the account is inactive until then.
    awaiting_approval: Mapped[bool] = mapped_column(default=False, server_default=text("false"))


class EdgeSession(Base):
    """A console or CLI login: found by the SHA-256 of an opaque token, bounded twice in time."""

    __tablename__ = "edge_sessions"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    operator_id: Mapped[str] = mapped_column(
        ForeignKey("edge_operators.id", ondelete="CASCADE"), index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LEN), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    remote_addr: Mapped[str | None] = mapped_column(String(64))


class EdgeReviewRequest(Base):
    """A risky operation waiting for a second operator (four-eyes) before it may run."""

    __tablename__ = "edge_review_requests"
    __table_args__ = (
        CheckConstraint(
            "reviewer_id IS NULL OR reviewer_id <> requester_id", name="reviewer_not_requester"
        ),
        Index("ix_edge_review_requests_dealer_state", "dealer_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(DEALER_ID_LEN))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: SHA-256 of the canonical JSON payload: what the reviewer approved, byte for byte.
    payload_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LEN))
    reason: Mapped[str] = mapped_column(Text)
    requester_id: Mapped[str] = mapped_column(ForeignKey("edge_operators.id"))
    reviewer_id: Mapped[str | None] = mapped_column(ForeignKey("edge_operators.id"))
    executor_id: Mapped[str | None] = mapped_column(ForeignKey("edge_operators.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EdgeActivationWorkflow(Base):
    """Durable state of one car's activation on this edge, resumable after a crash."""

    __tablename__ = "edge_activation_workflows"
    __table_args__ = (Index("ix_edge_activation_workflows_vin_state", "vin", "state"),)

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(DEALER_ID_LEN))
    vin: Mapped[str] = mapped_column(String(VIN_LEN))
    state: Mapped[str] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    operator_id: Mapped[str] = mapped_column(ForeignKey("edge_operators.id"))
    review_request_id: Mapped[str | None] = mapped_column(ForeignKey("edge_review_requests.id"))
    offline: Mapped[bool] = mapped_column(default=False)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    #: Optimistic concurrency: every update bumps it, a stale writer's update matches no row.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EdgeOutboxMessage(Base):
    """Transactional outbox: written in the same transaction as the change it reports."""

    __tablename__ = "edge_outbox"
    __table_args__ = (Index("ix_edge_outbox_pending", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: CloudEvents ``id``: the receiver deduplicates on it.
    event_id: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    event_type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Set when the receiver refused the message for good (problem code in ``last_error``);
    #: a dead message is kept and shown, never retried and never silently dropped.
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EdgeOfflinePackage(Base):
    """A pre-issued, single-use, VIN-bound offline activation package held in the dealer's stock."""

    __tablename__ = "edge_offline_packages"
    __table_args__ = (
        Index("ix_edge_offline_packages_vin_state", "vin", "state"),
        CheckConstraint("state <> 'used' OR used_at IS NOT NULL", name="used_has_time"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(DEALER_ID_LEN))
    vin: Mapped[str] = mapped_column(String(VIN_LEN))
    counter: Mapped[int] = mapped_column(Integer)
    bundle: Mapped[bytes] = mapped_column(LargeBinary)
    bundle_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LEN), unique=True)
    #: The images the bundle refers to (name, ECU, digest, size, URL), to fetch into the cache.
    packages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, server_default=text("'[]'"))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by_operator_id: Mapped[str | None] = mapped_column(ForeignKey("edge_operators.id"))
    review_request_id: Mapped[str | None] = mapped_column(ForeignKey("edge_review_requests.id"))


class EdgeConsentRecord(Base):
    """One privacy choice, append-only; pointing to the exact notice version shown (as in Fides)."""

    __tablename__ = "edge_consent_records"
    __table_args__ = (Index("ix_edge_consent_records_vin_purpose", "vin", "purpose"),)

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(String(DEALER_ID_LEN))
    vin: Mapped[str] = mapped_column(String(VIN_LEN))
    #: SHA-256 of the data subject's identity; the identity itself stays off the edge.
    subject_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LEN))
    purpose: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    mechanism: Mapped[str] = mapped_column(String(16))
    notice_id: Mapped[str] = mapped_column(String(64))
    notice_version: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    operator_id: Mapped[str | None] = mapped_column(ForeignKey("edge_operators.id"))
    supersedes_id: Mapped[str | None] = mapped_column(ForeignKey("edge_consent_records.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EdgeWorkflowStep(Base):
    """One committed transition of an activation workflow and the evidence of that step.

    Written in the same transaction as the workflow's state change, its ledger entry and its
    outbox message, so after a crash either all four exist or none does.
    """

    __tablename__ = "edge_workflow_steps"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("duration_ms >= 0", name="duration_non_negative"),
    )

    workflow_id: Mapped[str] = mapped_column(
        ForeignKey("edge_activation_workflows.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    #: Stable code: ``ok`` or the refusal / failure code.
    status: Mapped[str] = mapped_column(String(64))
    #: What the step saw: identifiers read, bundle hash, bytes confirmed by the car, NRCs ...
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: SHA-256 of the canonical JSON evidence; the ledger entry carries it.
    evidence_sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LEN))
    #: Index of the ledger entry that records this step (``ledger_entries.idx``).
    ledger_index: Mapped[int] = mapped_column(Integer, unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer)
