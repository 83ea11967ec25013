"""What a leaf says: canonical, versioned JSON records, with personal data only as commitments.

A record is encoded as JSON with sorted keys, no insignificant whitespace and UTF-8, and carries
``"v": 1``; decoding re-encodes and refuses anything that is not byte-identical, so one record has
exactly one leaf. Personal data (operator and reviewer IDs, owner and customer references) never
enters a leaf in clear: each value becomes ``HMAC-SHA256(salt, field || 0x00 || value)`` under a
fresh 32-byte salt kept outside the log (``ledger_salts``). Deleting the salt crypto-shreds the
value; the leaf and the tree stay as they were.
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
    CONSENT_CHANGE = "consent-change"
    OFFLINE_USE = "offline-use"


class NetworkEnvironment(StrEnum):
    """How the edge reached the cloud when the event happened."""

    ONLINE = "online"
    OFFLINE = "offline"
    DEGRADED = "degraded"


#: Fields that are personal data and so are only ever logged as commitments.
PERSONAL_FIELDS = frozenset({"operator_id", "reviewer_id", "owner_ref", "customer_id"})


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
        for name, c in self.commitments.items():
            if name not in PERSONAL_FIELDS or not _HEX64.match(c):
                raise EntryError(f"commitment {name!r} is unknown or not hex SHA-256")
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


Record = ActivityRecord | EdgeCheckpointRecord


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
    elif d.get("type") == "edge-checkpoint":
        if not isinstance(d.get("origin"), str) or not isinstance(d.get("note"), str):
            raise EntryError("edge checkpoint record lacks origin or note")
        record = EdgeCheckpointRecord(d["origin"], d["note"])
    else:
        raise EntryError(f"unknown record type {d.get('type')!r}")
    if record.encode() != payload:
        raise EntryError("payload is not in canonical form")
    return record


def open_commitment(record: ActivityRecord, field_name: str, value: str, salt: bytes) -> bool:
    """True when ``value`` is what ``record`` committed to under ``field_name``."""
    expected = record.commitments.get(field_name)
    return expected is not None and hmac.compare_digest(
        expected, commitment(field_name, value, salt)
    )
