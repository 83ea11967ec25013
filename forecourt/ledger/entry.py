"""What a leaf says: canonical, versioned JSON records, with personal data only as commitments.

A record is encoded as JSON with sorted keys, no insignificant whitespace and UTF-8, and carries
``"v": 1`` and a ``"type"``: ``activity`` (something happened to a car), ``dealer-event``
(something happened to a dealer's operator accounts or dual reviews, with no car) or
``edge-checkpoint`` (log of logs). Decoding re-encodes and refuses anything that is not
byte-identical, so one record has exactly one leaf. Personal data (operator and reviewer IDs, owner
and customer references, who did a dealer-level change and to whom) never enters a leaf in clear:
each value becomes ``HMAC-SHA256(salt, field || 0x00 || value)`` under a fresh 32-byte salt kept
outside the log (``ledger_salts``). Deleting the salt crypto-shreds the value; the leaf and the tree
stay as they were.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from forecourt.ledger.errors import EntryError

FORMAT_VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


class EventKind(StrEnum):
    """What happened to the car (the kinds the product's ledger must record)."""

    ACTIVATION = "activation"
    FEATURE_CHANGE = "feature-change"
    REVOCATION = "revocation"
    OWNERSHIP_CHANGE = "ownership-change"
    LIFECYCLE_CHANGE = "lifecycle-change"
    CONSENT_CHANGE = "consent-change"
    OFFLINE_USE = "offline-use"


class NetworkEnvironment(StrEnum):
    """How the edge reached the cloud when the event happened."""

    ONLINE = "online"
    OFFLINE = "offline"
    DEGRADED = "degraded"


#: Personal fields an :class:`ActivityRecord` may commit to.
ACTIVITY_PERSONAL_FIELDS = frozenset({"operator_id", "reviewer_id", "owner_ref", "customer_id"})
#: Personal fields a :class:`DealerEventRecord` may commit to: who acted, whom it was about.
DEALER_EVENT_PERSONAL_FIELDS = frozenset({"actor_id", "subject_id"})
#: Fields that are personal data and so are only ever logged as commitments.
PERSONAL_FIELDS = ACTIVITY_PERSONAL_FIELDS | DEALER_EVENT_PERSONAL_FIELDS
_REVIEW_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ROLE = _REVIEW_KIND
_REVIEW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def commitment(field_name: str, value: str, salt: bytes) -> str:
    """``HMAC-SHA256(salt, field || 0x00 || value)``, hex: binding, and hiding while salted."""
    if len(salt) != 32:
        raise EntryError(f"salt for {field_name!r} is {len(salt)} bytes, not 32")
    msg = field_name.encode() + b"\x00" + value.encode()
    return hmac.new(salt, msg, hashlib.sha256).hexdigest()


def commit(personal: Mapping[str, str]) -> tuple[dict[str, str], dict[str, bytes]]:
    """Commitments to ``personal`` values and the fresh salts that open them."""
    commitments: dict[str, str] = {}
    salts: dict[str, bytes] = {}
    for name, value in personal.items():
        if name not in PERSONAL_FIELDS:
            raise EntryError(f"{name!r} is not a known personal field")
        salts[name] = secrets.token_bytes(32)
        commitments[name] = commitment(name, value, salts[name])
    return commitments, salts


def _check_commitments(commitments: Mapping[str, str], allowed: frozenset[str]) -> None:
    for name, c in commitments.items():
        if name not in allowed or not isinstance(c, str) or not _HEX64.match(c):
            raise EntryError(f"commitment {name!r} is unknown or not hex SHA-256")


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise EntryError("record timestamp must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """One event in a car's life, as the edge or the cloud logs it."""

    timestamp: datetime
    kind: EventKind
    vin: str
    dealer_id: str
    edge_id: str
    network: NetworkEnvironment
    response_status: str
    features: tuple[str, ...] = ()
    package_versions: Mapping[str, str] = field(default_factory=dict)
    evidence_hashes: tuple[str, ...] = ()
    commitments: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _VIN.match(self.vin):
            raise EntryError(f"VIN {self.vin!r} is not 17 ISO 3779 characters")
        for h in self.evidence_hashes:
            if not _HEX64.match(h):
                raise EntryError(f"evidence hash {h!r} is not lower-case hex SHA-256")
        _check_commitments(self.commitments, ACTIVITY_PERSONAL_FIELDS)
        _timestamp(self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "type": "activity",
            "timestamp": _timestamp(self.timestamp),
            "kind": self.kind.value,
            "vin": self.vin,
            "dealer_id": self.dealer_id,
            "edge_id": self.edge_id,
            "network": self.network.value,
            "response_status": self.response_status,
            "features": list(self.features),
            "package_versions": dict(self.package_versions),
            "evidence_hashes": list(self.evidence_hashes),
            "commitments": dict(self.commitments),
        }

    def encode(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActivityRecord:
        try:
            return cls(
                timestamp=datetime.fromisoformat(d["timestamp"]),
                kind=EventKind(d["kind"]),
                vin=d["vin"],
                dealer_id=d["dealer_id"],
                edge_id=d["edge_id"],
                network=NetworkEnvironment(d["network"]),
                response_status=d["response_status"],
                features=tuple(d["features"]),
                package_versions=dict(d["package_versions"]),
                evidence_hashes=tuple(d["evidence_hashes"]),
                commitments=dict(d["commitments"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EntryError(f"activity record is malformed: {exc!r}") from exc


class DealerEventKind(StrEnum):
    """What happened to a dealer's operator accounts or dual reviews (no car involved)."""

    OPERATOR_CREATED = "operator-created"
    OPERATOR_ENROLLED = "operator-enrolled"
    OPERATOR_ROLE_CHANGED = "operator-role-changed"
    #: OEM staff confirmed the elevated role an edge claims for an operator (the cloud's log).
    OPERATOR_ROLE_CONFIRMED = "operator-role-confirmed"
    OPERATOR_LOCKED = "operator-locked"
    OPERATOR_ACTIVATED = "operator-activated"
    OPERATOR_DEACTIVATED = "operator-deactivated"
    REVIEW_REQUESTED = "review-requested"
    REVIEW_APPROVED = "review-approved"
    REVIEW_REJECTED = "review-rejected"
    REVIEW_EXECUTED = "review-executed"

    @property
    def is_review(self) -> bool:
        return self.value.startswith("review-")


@dataclass(frozen=True, slots=True)
class DealerEventRecord:
    """One change to who may act at a dealer, or to a four-eyes decision, as the edge logs it.

    Who acted (``actor_id``; absent when the system did, e.g. a lock-out) and whom it was about
    (``subject_id``: the account, or a review's requester) are personal and appear only as
    commitments. ``role`` is the role granted or held (operator events); ``review_kind`` and
    ``review_id`` name the request (review events, and only those). ``evidence_hash`` is the
    SHA-256 of the canonical evidence document, which names no person: it pins what was decided
    (a review's payload digest) without becoming an unsalted commitment to anybody.
    """

    timestamp: datetime
    kind: DealerEventKind
    dealer_id: str
    edge_id: str
    evidence_hash: str
    role: str | None = None
    review_kind: str | None = None
    review_id: str | None = None
    commitments: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, DealerEventKind):
            raise EntryError(f"dealer event kind {self.kind!r} is unknown")
        for name in ("dealer_id", "edge_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise EntryError(f"dealer event {name} must be a non-empty string")
        if not isinstance(self.evidence_hash, str) or not _HEX64.match(self.evidence_hash):
            raise EntryError(f"evidence hash {self.evidence_hash!r} is not lower-case hex SHA-256")
        _optional(self.role, _ROLE, "role")
        _optional(self.review_kind, _REVIEW_KIND, "review kind")
        _optional(self.review_id, _REVIEW_ID, "review id")
        names_review = self.review_kind is not None and self.review_id is not None
        if self.kind.is_review and not names_review:
            raise EntryError(f"{self.kind.value} must name the review's kind and id")
        if not self.kind.is_review and (self.review_kind or self.review_id):
            raise EntryError(f"{self.kind.value} names no review")
        if self.kind.is_review and self.role is not None:
            raise EntryError(f"{self.kind.value} carries no role")
        _check_commitments(self.commitments, DEALER_EVENT_PERSONAL_FIELDS)
        _timestamp(self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "type": "dealer-event",
            "timestamp": _timestamp(self.timestamp),
            "kind": self.kind.value,
            "dealer_id": self.dealer_id,
            "edge_id": self.edge_id,
            "role": self.role,
            "review_kind": self.review_kind,
            "review_id": self.review_id,
            "evidence_hash": self.evidence_hash,
            "commitments": dict(self.commitments),
        }

    def encode(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DealerEventRecord:
        try:
            commitments = d["commitments"]
            if not isinstance(commitments, dict):
                raise TypeError("commitments is not an object")
            return cls(
                timestamp=datetime.fromisoformat(d["timestamp"]),
                kind=DealerEventKind(d["kind"]),
                dealer_id=d["dealer_id"],
                edge_id=d["edge_id"],
                evidence_hash=d["evidence_hash"],
                role=d["role"],
                review_kind=d["review_kind"],
                review_id=d["review_id"],
                commitments=dict(commitments),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EntryError(f"dealer event record is malformed: {exc!r}") from exc


def _optional(value: object, pattern: re.Pattern[str], what: str) -> None:
    if value is not None and (not isinstance(value, str) or not pattern.match(value)):
        raise EntryError(f"{what} {value!r} is not a well-formed identifier")


@dataclass(frozen=True, slots=True)
class EdgeCheckpointRecord:
    """Log of logs: an edge log's signed checkpoint, as the cloud log records it."""

    origin: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "type": "edge-checkpoint",
            "origin": self.origin,
            "note": self.note,
        }

    def encode(self) -> bytes:
        return canonical_json(self.to_dict())


Record = ActivityRecord | DealerEventRecord | EdgeCheckpointRecord


def decode_record(payload: bytes) -> Record:
    """Parse a leaf payload, refusing anything that is not the canonical encoding."""
    try:
        d = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EntryError(f"payload is not JSON: {exc}") from exc
    if not isinstance(d, dict) or d.get("v") != FORMAT_VERSION:
        raise EntryError("payload is not a version 1 ledger record")
    record: Record
    if d.get("type") == "activity":
        record = ActivityRecord.from_dict(d)
    elif d.get("type") == "dealer-event":
        record = DealerEventRecord.from_dict(d)
    elif d.get("type") == "edge-checkpoint":
        if not isinstance(d.get("origin"), str) or not isinstance(d.get("note"), str):
            raise EntryError("edge checkpoint record lacks origin or note")
        record = EdgeCheckpointRecord(d["origin"], d["note"])
    else:
        raise EntryError(f"unknown record type {d.get('type')!r}")
    if record.encode() != payload:
        raise EntryError("payload is not in canonical form")
    return record


def open_commitment(
    record: ActivityRecord | DealerEventRecord, field_name: str, value: str, salt: bytes
) -> bool:
    """True when ``value`` is what ``record`` committed to under ``field_name``."""
    expected = record.commitments.get(field_name)
    return expected is not None and hmac.compare_digest(
        expected, commitment(field_name, value, salt)
    )
