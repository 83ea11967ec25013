"""The edge's audit trail: every workflow step and refusal in the edge's Merkle log, anchored.

A step is recorded *inside the transaction that commits it* (:meth:`EdgeAudit.record_in`), so the
ledger can have neither a gap (a committed step without its entry) nor a duplicate (an entry for a
step that was rolled back and done again). Each entry is an
:class:`~forecourt.ledger.entry.ActivityRecord`: timestamp, VIN, dealer, edge, online/offline,
status, features, the evidence hash, and operator and reviewer as salted commitments (the ledger
keeps the salts apart, so erasing a person never touches the tree). What does not fit a leaf
(client address, interface, cloud TLS peer, duration, NRCs, bytes) is in the evidence document
whose SHA-256 the leaf carries; the document stays in ``edge_workflow_steps``.

Anchoring: :meth:`EdgeAudit.queue_checkpoint` signs a checkpoint and queues it in the outbox;
the outbox delivers it with :meth:`EdgeAudit.checkpoint_handler` to the cloud's log of logs,
with a consistency proof from the last anchored size, verifies the receipt against the cloud's
key and keeps it. A checkpoint that already has a receipt is not submitted again.

Dealer-level events (operator accounts, dual-review decisions) have no car: they are
:class:`~forecourt.ledger.entry.DealerEventRecord` leaves, appended by :meth:`record_dealer_in`
in the transaction of the change, with who acted and whom it concerned as salted commitments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

# The module, not its names: the outbox imports the operators package, whose events ledger
# through this module, so whichever of the two loads first sees the other half-initialised.
from forecourt.edge import outbox
from forecourt.edge.cloud_client import CloudClient, CloudRefused, OutgoingEvent
from forecourt.ledger.checkpoint import Checkpoint, NoteVerifier, SignedNote
from forecourt.ledger.entry import (
    ActivityRecord,
    DealerEventKind,
    DealerEventRecord,
    EventKind,
    NetworkEnvironment,
    commit,
)
from forecourt.ledger.errors import LedgerError, ProofError
from forecourt.ledger.log import TransparencyLog
from forecourt.logging import get_logger
from forecourt.store.ledger import LedgerReceipt

_log = get_logger("edge.audit")
_AUDIT_KEY = "forecourt.edge.audit"


def canonical_evidence(evidence: Mapping[str, Any]) -> bytes:
    """Canonical JSON of an evidence document (sorted keys, no spaces, UTF-8)."""
    return json.dumps(
        evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_evidence(evidence)).hexdigest()


@dataclass(frozen=True, slots=True)
class NetworkContext:
    """Where a step happened on the network, as the audit trail records it."""

    online: bool
    client_address: str | None = None
    car_address: str | None = None
    interface: str | None = None
    cloud_tls_peer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "client_address": self.client_address,
            "car_address": self.car_address,
            "interface": self.interface,
            "cloud_tls_peer": self.cloud_tls_peer,
        }


@dataclass(frozen=True, slots=True)
class AuditFacts:
    """What one ledger entry says about one step."""

    timestamp: datetime
    kind: EventKind
    vin: str
    dealer_id: str
    online: bool
    status: str
    evidence_hashes: tuple[str, ...]
    operator_id: str | None = None
    reviewer_id: str | None = None
    customer_id: str | None = None
    features: tuple[str, ...] = ()
    package_versions: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class DealerFacts:
    """What one ledger entry says about one change to a dealer's accounts or reviews."""

    timestamp: datetime
    kind: DealerEventKind
    dealer_id: str
    evidence: Mapping[str, Any]
    """The evidence document (names no person); the leaf carries its SHA-256."""
    actor_id: str | None = None
    subject_id: str | None = None
    role: str | None = None
    review_kind: str | None = None
    review_id: str | None = None


class EdgeAudit:
    """Appends step records to the edge log and anchors its checkpoints in the cloud log."""

    def __init__(self, log: TransparencyLog, edge_id: str) -> None:
        self.log = log
        self.edge_id = edge_id

    def bind(self, sessions: sessionmaker[Session]) -> None:
        """Make this audit reachable from every session of ``sessions`` (:meth:`of`).

        Code that writes an audited row inside someone else's transaction (consent captured by a
        workflow step) finds the ledger through its session, so the entry lands in the same
        transaction as the row without every caller having to hand the audit down.
        """
        sessions.configure(info={**sessions.kw.get("info", {}), _AUDIT_KEY: self})

    @staticmethod
    def of(session: Session) -> EdgeAudit | None:
        """The audit bound to ``session``'s factory by :meth:`bind`, if any."""
        audit = session.info.get(_AUDIT_KEY)
        return audit if isinstance(audit, EdgeAudit) else None

    def record_in(self, session: Session, facts: AuditFacts) -> int:
        """Append one record in the caller's transaction; returns its ledger index."""
        personal = {
            name: value
            for name, value in (
                ("operator_id", facts.operator_id),
                ("reviewer_id", facts.reviewer_id),
                ("customer_id", facts.customer_id),
            )
            if value
        }
        commitments, salts = commit(personal)
        record = ActivityRecord(
            timestamp=facts.timestamp,
            kind=facts.kind,
            vin=facts.vin,
            dealer_id=facts.dealer_id,
            edge_id=self.edge_id,
            network=NetworkEnvironment.ONLINE if facts.online else NetworkEnvironment.OFFLINE,
            response_status=facts.status,
            features=tuple(sorted(facts.features)),
            package_versions=dict(facts.package_versions or {}),
            evidence_hashes=facts.evidence_hashes,
            commitments=commitments,
        )
        [index] = self.log.store.append_in(session, [record.encode()])
        self.log.store.save_salts(session, index, salts)
        return index

    def record_dealer_in(self, session: Session, facts: DealerFacts) -> int:
        """Append one dealer-level event in the caller's transaction; returns its ledger index.

        Raises :class:`~forecourt.ledger.errors.EntryError` for facts no record can hold; the
        caller's transaction then rolls back, so the change is not committed unledgered.
        """
        personal = {
            name: value
            for name, value in (("actor_id", facts.actor_id), ("subject_id", facts.subject_id))
            if value
        }
        commitments, salts = commit(personal)
        record = DealerEventRecord(
            timestamp=facts.timestamp,
            kind=facts.kind,
            dealer_id=facts.dealer_id,
            edge_id=self.edge_id,
            evidence_hash=evidence_digest(facts.evidence),
            role=facts.role,
            review_kind=facts.review_kind,
            review_id=facts.review_id,
            commitments=commitments,
        )
        [index] = self.log.store.append_in(session, [record.encode()])
        self.log.store.save_salts(session, index, salts)
        return index

    def queue_checkpoint(self, sessions: sessionmaker[Session], now: datetime) -> str:
        """Sign the current tree head and queue it for the cloud; returns the signed note."""
        note = self.log.issue_checkpoint().render()
        with sessions.begin() as s:
            outbox.enqueue(
                s, outbox.LEDGER_CHECKPOINT, {"note": note}, now=now, subject=self.log.origin
            )
        return note

    def checkpoint_handler(
        self, sessions: sessionmaker[Session], cloud: CloudClient, cloud_key: NoteVerifier
    ) -> outbox.Handler:
        """The outbox handler delivering :data:`LEDGER_CHECKPOINT` messages."""

        def deliver(event: OutgoingEvent) -> None:
            note = str(event.data["note"])
            size = Checkpoint.parse(SignedNote.parse(note).text).size
            with sessions() as s:
                held = s.execute(select(LedgerReceipt.receipt)).scalars().all()
                if any(json.loads(r).get("edge_checkpoint") == note for r in held):
                    return  # delivered before a crash; the receipt is already kept
                anchored = s.execute(
                    select(LedgerReceipt.checkpoint_size)
                    .order_by(LedgerReceipt.checkpoint_size.desc())
                    .limit(1)
                ).scalar_one_or_none()
            if anchored is not None and anchored > size:
                return  # a newer checkpoint is anchored already; this one is covered by it
            proof = (
                self.log.store.consistency_proof(anchored, size)
                if anchored and anchored < size
                else None
            )
            receipt = cloud.submit_checkpoint(note, proof)
            try:
                receipt.verify(cloud_key)
                if receipt.edge_checkpoint != note:
                    raise ProofError("receipt is for another checkpoint than the one submitted")
            except LedgerError as exc:
                _log.error("checkpoint_receipt_invalid", size=size, reason=str(exc))
                raise CloudRefused(
                    "submit_checkpoint", 502, ("receipt_invalid",), str(exc)
                ) from exc
            with sessions.begin() as s:
                s.add(
                    LedgerReceipt(
                        checkpoint_size=size,
                        receipt=json.dumps(receipt.to_json(), sort_keys=True),
                        received_at=event.time,
                    )
                )
            _log.info("checkpoint_anchored", size=size, cloud_index=receipt.cloud_index)

        return deliver

    def receipts(self, sessions: sessionmaker[Session]) -> Sequence[dict[str, Any]]:
        with sessions() as s:
            rows = s.execute(select(LedgerReceipt.receipt).order_by(LedgerReceipt.id)).scalars()
            return [json.loads(r) for r in rows]
