"""The cloud's registry tables: dealers, the operators each edge registered, certificates,
vehicles and ECUs, the catalog (features, packages), entitlements, versioned compliance profiles,
activations, offline packages, OEM staff API tokens and the audit of authority changes; and
what edges sync up: their events (deduplicated by CloudEvents id), consent records with their
propagation per downstream system, each car's software history (UNECE R156) and the edge ledger
keys registered for the log of logs.

Domain values with many nested fields (a feature, a package, a compliance profile) are kept as
their :mod:`forecourt.core.codec` JSON next to the columns that queries filter on, so the domain
type stays the one definition and the table never drifts from it.

Two constraints carry concurrency rules, on SQLite and PostgreSQL alike:

* ``registry_activations.request_id`` is the primary key: a retried request finds its answer.
* ``registry_sync_events.event_id`` is the primary key: an event pushed twice is held once.
* ``registry_activations.open_vin`` is unique and equals the VIN while an activation is open
  (issued, not yet reported, not expired), NULL otherwise: two edges asking for one car at once
  cannot both hold it, whatever the isolation level.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from forecourt.store.base import Base, UTCDateTime


class DealerRow(Base):
    """A dealership: identity (``DE-MUC-01``), location and the market it sells in."""

    __tablename__ = "registry_dealers"

    dealer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    city: Mapped[str] = mapped_column(String(100), nullable=False)
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    market: Mapped[str] = mapped_column(String(8), nullable=False)
    latitude: Mapped[float] = mapped_column(Float, nullable=False)
    longitude: Mapped[float] = mapped_column(Float, nullable=False)


class EdgeOperatorRow(Base):
    """An operator as one edge of a dealer registered them: the edge's claims are checked here.

    Scoped per (dealer, edge): an edge's push replaces only its own rows, so one edge can neither
    remove nor impersonate another's operators. ``confirmed_role`` is the elevated role OEM staff
    confirmed; an elevated ``role`` that differs from it is only claimed (technician rights).
    """

    __tablename__ = "registry_edge_operators"

    dealer_id: Mapped[str] = mapped_column(
        ForeignKey("registry_dealers.dealer_id"), primary_key=True
    )
    edge: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    confirmed_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class AuditRow(Base):
    """One change to the registry's authority data (operators, entitlements), never updated.

    ``actor`` is ``edge:<certificate serial hex>`` or ``staff:<token subject>``; ``subject`` what
    changed (an operator id, an entitlement id); ``detail`` the before/after values."""

    __tablename__ = "registry_audit"
    __table_args__ = (Index("ix_registry_audit_subject_action", "subject", "action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    dealer_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    edge: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(128), nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class DealerCertificateRow(Base):
    """A client certificate issued to a dealer edge; ``revoked_at`` set once revoked."""

    __tablename__ = "registry_dealer_certificates"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)  # lower-case hex
    dealer_id: Mapped[str] = mapped_column(
        ForeignKey("registry_dealers.dealer_id"), nullable=False, index=True
    )
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)


class VehicleRow(Base):
    """A car as the factory built it, and where it is now (dealer, owner, lifecycle state)."""

    __tablename__ = "registry_vehicles"

    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    model: Mapped[str] = mapped_column(String(32), nullable=False)
    model_year: Mapped[int] = mapped_column(Integer, nullable=False)
    plant: Mapped[str] = mapped_column(String(32), nullable=False)
    build_date: Mapped[date] = mapped_column(Date, nullable=False)
    market: Mapped[str] = mapped_column(String(8), nullable=False)
    option_codes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    dealer_id: Mapped[str | None] = mapped_column(
        ForeignKey("registry_dealers.dealer_id"), nullable=True, index=True
    )
    owner_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    activation_counter: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    offline_counter: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    feed_digest: Mapped[str] = mapped_column(String(64), nullable=False)


class EcuRow(Base):
    """One ECU of the factory inventory (ISO 14229 identifiers and the factory keys)."""

    __tablename__ = "registry_ecus"

    vin: Mapped[str] = mapped_column(ForeignKey("registry_vehicles.vin"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    logical_address: Mapped[int] = mapped_column(Integer, nullable=False)
    serial: Mapped[str] = mapped_column(String(64), nullable=False)
    hardware_number: Mapped[str] = mapped_column(String(64), nullable=False)
    software_version: Mapped[str] = mapped_column(String(64), nullable=False)
    signing_public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sealing_public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class FeatureRow(Base):
    """A catalog feature, its codec JSON kept whole."""

    __tablename__ = "registry_features"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class PackageRow(Base):
    """A published package version; its bytes live in the blob store under ``sha256``."""

    __tablename__ = "registry_packages"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class EntitlementRow(Base):
    """A vehicle's right to a feature. ``(issuer, reference)`` makes a purchase idempotent.

    ``issuer`` is the dealer whose purchase created it (``oem`` for the OEM's own grants), so a
    dealer's reference never finds another dealer's entitlement. A VIN gets at most one trial of
    a feature, ever (a partial unique index on SQLite and PostgreSQL)."""

    __tablename__ = "registry_entitlements"
    __table_args__ = (
        UniqueConstraint("issuer", "reference"),
        Index(
            "uq_registry_entitlements_one_trial",
            "vin",
            "feature_code",
            unique=True,
            sqlite_where=text("source = 'trial'"),
            postgresql_where=text("source = 'trial'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(32), nullable=False, server_default="oem")
    reference: Mapped[str] = mapped_column(String(100), nullable=False)
    vin: Mapped[str] = mapped_column(
        ForeignKey("registry_vehicles.vin"), nullable=False, index=True
    )
    feature_code: Mapped[str] = mapped_column(String(32), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ComplianceProfileRow(Base):
    """Version ``version`` of a market's privacy profile; the newest published one applies."""

    __tablename__ = "registry_compliance_profiles"

    market: Mapped[str] = mapped_column(String(8), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ActivationRow(Base):
    """One authorisation request and its outcome, keyed by the edge's request id.

    ``status``: ``pending`` while being decided, ``issued`` (bundle held), ``refused`` (reasons
    held), ``applied``/``failed`` once the edge reports, ``expired`` when taken over after its
    validity. ``ledger_index``: the cloud log's record of an applied activation, set by the
    ledger follower (:mod:`forecourt.cloud.activations.ledger`) seconds after the report, never
    on the authorisation path; the partial index keeps the follower's look-up to the rows it has
    not logged yet.
    """

    __tablename__ = "registry_activations"
    __table_args__ = (
        UniqueConstraint("open_vin"),
        Index(
            "ix_registry_activations_unlogged",
            "created_at",
            sqlite_where=text("status = 'applied' AND ledger_index IS NULL"),
            postgresql_where=text("status = 'applied' AND ledger_index IS NULL"),
        ),
    )

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    vin: Mapped[str] = mapped_column(String(17), nullable=False, index=True)
    open_vin: Mapped[str | None] = mapped_column(String(17), nullable=True)
    dealer_id: Mapped[str] = mapped_column(String(32), nullable=False)
    operator_id: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    activation_counter: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bundle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class OfflinePackageRow(Base):
    """A bundle issued ahead for an assigned car: single use, short validity, use recorded."""

    __tablename__ = "registry_offline_packages"

    package_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vin: Mapped[str] = mapped_column(
        ForeignKey("registry_vehicles.vin"), nullable=False, index=True
    )
    dealer_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    counter: Mapped[int] = mapped_column(BigInteger, nullable=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    bundle: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    use_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    uses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)


class ApiTokenRow(Base):
    """An OEM staff token: only its SHA-256 is kept, with the scopes it grants."""

    __tablename__ = "registry_api_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    subject: Mapped[str] = mapped_column(String(100), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SyncEventRow(Base):
    """A CloudEvent an edge pushed, held once per ``event_id`` whatever the retries.

    ``digest`` is the SHA-256 of the event's canonical JSON: the same id with another body is a
    reused id, refused, never a silent overwrite."""

    __tablename__ = "registry_sync_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(128), nullable=False)
    source: Mapped[str] = mapped_column(String(128), nullable=False)
    dealer_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    #: The edge's name (the certificate's CN); not ``edge_id`` so no registry column reads as
    #: an edge table's.
    edge: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class ConsentRecordRow(Base):
    """One privacy choice as captured at a dealer; append-only (a withdrawal is a new row).

    Points to the exact notice version shown; the customer is kept only as the SHA-256 of their
    reference; ``supersedes_id`` names the earlier row for the same car, customer and category."""

    __tablename__ = "registry_consent_records"

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("registry_sync_events.event_id"), nullable=False, index=True
    )
    dealer_id: Mapped[str] = mapped_column(String(32), nullable=False)
    vin: Mapped[str] = mapped_column(String(17), nullable=False, index=True)
    subject_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    category: Mapped[str] = mapped_column(String(64), nullable=False)
    choice: Mapped[str] = mapped_column(String(16), nullable=False)
    notice_id: Mapped[str] = mapped_column(String(64), nullable=False)
    notice_version: Mapped[str] = mapped_column(String(32), nullable=False)
    mechanism: Mapped[str] = mapped_column(String(16), nullable=False)
    region: Mapped[str] = mapped_column(String(16), nullable=False)
    method: Mapped[str] = mapped_column(String(32), nullable=False)
    supersedes_id: Mapped[str | None] = mapped_column(
        ForeignKey("registry_consent_records.record_id"), nullable=True
    )
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ConsentPropagationRow(Base):
    """Whether a consent record has reached one downstream system (``car``, ``cloud``, ``crm``)."""

    __tablename__ = "registry_consent_propagation"

    record_id: Mapped[str] = mapped_column(
        ForeignKey("registry_consent_records.record_id"), primary_key=True
    )
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class SoftwareHistoryRow(Base):
    """UNECE R156: one ECU's software before and after one change of one car, never updated.

    ``before``/``after`` list the installed images (name, sha256, length) and the ECU's software
    version; ``event_id`` is the edge event that reported the change (unique per ECU)."""

    __tablename__ = "registry_software_history"
    __table_args__ = (UniqueConstraint("event_id", "ecu_serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vin: Mapped[str] = mapped_column(String(17), nullable=False, index=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("registry_sync_events.event_id"), nullable=False
    )
    ecu_serial: Mapped[str] = mapped_column(String(64), nullable=False)
    ecu_address: Mapped[str] = mapped_column(String(8), nullable=False)
    dealer_id: Mapped[str] = mapped_column(String(32), nullable=False)
    change_ref: Mapped[str] = mapped_column(String(64), nullable=False)
    offline: Mapped[bool] = mapped_column(Boolean, nullable=False)
    before: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class EdgeLogRow(Base):
    """An edge ledger's checkpoint key as the OEM registered it, bound to dealer and edge."""

    __tablename__ = "registry_ledger_keys"
    __table_args__ = (UniqueConstraint("dealer_id", "edge"),)

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    dealer_id: Mapped[str] = mapped_column(ForeignKey("registry_dealers.dealer_id"), nullable=False)
    edge: Mapped[str] = mapped_column(String(64), nullable=False)
    vkey: Mapped[str] = mapped_column(String(512), nullable=False)
    registered_by: Mapped[str] = mapped_column(String(100), nullable=False)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ImageTargetsRow(Base):
    """Image repository targets metadata signed offline (``cloud sign-images``) and published.

    ``metadata`` is the signed envelope exactly as signed (canonical JSON); it is checked
    against the image root before it is stored and again before a cloud process serves it.
    ``version`` only rises: publication refuses a version not above the newest one, and every
    worker serves the newest version.
    """

    __tablename__ = "registry_image_targets"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    metadata_json: Mapped[bytes] = mapped_column("metadata", LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    target_count: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    published_by: Mapped[str] = mapped_column(String(100), nullable=False)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class WebhookSubscriptionRow(Base):
    """A partner endpoint (owner app, digital key, after-sales CRM) and the event types it gets.

    Never deleted, so a delivery's history keeps its endpoint: ``enabled`` false stops new and
    pending deliveries. The signing secrets live in :class:`WebhookSecretRow`."""

    __tablename__ = "registry_webhook_subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    description: Mapped[str] = mapped_column(String(200), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookSecretRow(Base):
    """A subscription's signing secret, sealed (AES-256-GCM) under the cloud's webhook key.

    A rotation sets ``expires_at`` on the current secret (the grace period) and adds a new one;
    every secret not yet expired signs, so a receiver may switch at its own pace."""

    __tablename__ = "registry_webhook_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("registry_webhook_subscriptions.subscription_id"), nullable=False, index=True
    )
    sealed: Mapped[str] = mapped_column(String(256), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OutboxEventRow(Base):
    """An integration event, written in the transaction of the change that caused it.

    ``event_id`` is the ``webhook-id`` every delivery of it carries (receivers deduplicate on
    it); ``dispatched_at`` is set once a worker has made its deliveries, one per subscription
    that wanted the type at that time."""

    __tablename__ = "registry_outbox_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class WebhookDeliveryRow(Base):
    """One event to one subscription: ``pending`` until ``delivered``, ``dead`` (attempts spent)
    or ``cancelled`` (subscription disabled).

    A worker claims a due row by moving ``next_attempt_at`` a lease ahead and counting the
    attempt, in one statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never
    send it at once; a worker that dies mid-send leaves it due again when the lease ends."""

    __tablename__ = "registry_webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_seq", "subscription_id"),
        Index("ix_registry_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_seq: Mapped[int] = mapped_column(ForeignKey("registry_outbox_events.seq"), nullable=False)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("registry_webhook_subscriptions.subscription_id"), nullable=False, index=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


__all__ = [
    "ActivationRow",
    "ApiTokenRow",
    "AuditRow",
    "ComplianceProfileRow",
    "ConsentPropagationRow",
    "ConsentRecordRow",
    "DealerCertificateRow",
    "DealerRow",
    "EcuRow",
    "EdgeLogRow",
    "EdgeOperatorRow",
    "EntitlementRow",
    "FeatureRow",
    "ImageTargetsRow",
    "OfflinePackageRow",
    "OutboxEventRow",
    "PackageRow",
    "SoftwareHistoryRow",
    "SyncEventRow",
    "VehicleRow",
    "WebhookDeliveryRow",
    "WebhookSecretRow",
    "WebhookSubscriptionRow",
]
