"""Log of logs: edges anchor their checkpoints in the cloud log and keep the receipts.

The cloud accepts an edge checkpoint only if it is signed by the key registered for that edge's
origin and, when the cloud already holds an earlier checkpoint from that edge, the edge proves
(RFC 9162 consistency proof) that the new tree extends the old one; a smaller size, or the same
size with another root, is a rollback or a fork and is refused. An accepted checkpoint becomes a
cloud log entry; the receipt is that entry's inclusion proof under a signed cloud checkpoint, which
anyone holding the cloud's key can verify offline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forecourt.ledger.checkpoint import (
    Checkpoint,
    NoteVerifier,
    SignedCheckpoint,
    SignedNote,
)
from forecourt.ledger.entry import EdgeCheckpointRecord
from forecourt.ledger.errors import (
    ConsistencyError,
    ExportFormatError,
    NoteError,
    ProofError,
    UnknownKeyError,
)
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.merkle import ConsistencyProof, InclusionProof, verify_consistency
from forecourt.ledger.repository import entry_leaf_hash
from forecourt.ledger.wire import inclusion_from_json, inclusion_to_json
from forecourt.logging import get_logger
from forecourt.store.ledger import LedgerPeerLog, LedgerReceipt

log = get_logger("ledger.logoflogs")


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that the cloud log holds an edge checkpoint at ``cloud_index``."""

    edge_checkpoint: str
    cloud_index: int
    cloud_checkpoint: str
    proof: InclusionProof

    def to_json(self) -> dict[str, Any]:
        return {
            "edge_checkpoint": self.edge_checkpoint,
            "cloud_index": self.cloud_index,
            "cloud_checkpoint": self.cloud_checkpoint,
            "proof": inclusion_to_json(self.proof),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Receipt:
        try:
            return cls(
                str(d["edge_checkpoint"]),
                int(d["cloud_index"]),
                str(d["cloud_checkpoint"]),
                inclusion_from_json(d["proof"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportFormatError(f"malformed receipt: {exc!r}") from exc

    def verify(self, cloud: NoteVerifier) -> SignedCheckpoint:
        """Check the cloud's signature and the inclusion proof; return the cloud checkpoint."""
        signed = SignedCheckpoint.open(self.cloud_checkpoint, cloud)
        edge = Checkpoint.parse(SignedNote.parse(self.edge_checkpoint).text)
        if self.proof.index != self.cloud_index or self.proof.size != signed.checkpoint.size:
            raise ProofError("receipt proof does not match its cloud index and checkpoint")
        payload = EdgeCheckpointRecord(edge.origin, self.edge_checkpoint).encode()
        self.proof.verify(entry_leaf_hash(self.cloud_index, payload), signed.checkpoint.root_hash)
        return signed


class CloudLogOfLogs:
    """The cloud's side: registered edge keys, their latest checkpoints, and submissions."""

    def __init__(self, log: TransparencyLog) -> None:
        self.log = log

    def register_edge(self, verifier: NoteVerifier) -> None:
        with Session(self.log.store.engine) as session, session.begin():
            if session.get(LedgerPeerLog, verifier.name) is not None:
                raise ConsistencyError(f"edge log {verifier.name!r} is already registered")
            session.add(LedgerPeerLog(origin=verifier.name, vkey=verifier.to_vkey()))

    def submit(self, note: str, consistency: ConsistencyProof | None = None) -> Receipt:
        """Verify and log an edge checkpoint; refusals change nothing and are logged."""
        try:
            return self._submit(note, consistency)
        except (NoteError, ConsistencyError, ProofError) as exc:
            log.warning("ledger.submission_refused", reason=str(exc))
            raise

    def _submit(self, note: str, consistency: ConsistencyProof | None) -> Receipt:
        origin = Checkpoint.parse(SignedNote.parse(note).text).origin
        with Session(self.log.store.engine) as session, session.begin():
            peer = session.execute(
                select(LedgerPeerLog).where(LedgerPeerLog.origin == origin).with_for_update()
            ).scalar_one_or_none()
            if peer is None:
                raise UnknownKeyError(f"no edge log registered as {origin!r}")
            cp = SignedCheckpoint.open(note, NoteVerifier.from_vkey(peer.vkey)).checkpoint
            if peer.size is not None and peer.root_hash is not None:
                _check_extends(peer.size, peer.root_hash, cp, consistency)
            index = self.log.append_edge_checkpoint(session, origin, note)
            peer.size, peer.root_hash = cp.size, cp.root_hash
        cloud_cp = self.log.issue_checkpoint()
        proof = self.log.store.inclusion_proof(index, cloud_cp.checkpoint.size)
        log.info("ledger.edge_checkpoint_logged", origin=origin, size=cp.size, cloud_index=index)
        return Receipt(note, index, cloud_cp.render(), proof)


def _check_extends(
    old_size: int, old_root: bytes, new: Checkpoint, proof: ConsistencyProof | None
) -> None:
    if new.size < old_size:
        raise ConsistencyError(f"rollback: size {new.size} after size {old_size}")
    if new.size == old_size:
        if new.root_hash != old_root:
            raise ConsistencyError(f"fork: two checkpoints of size {old_size} differ")
        return
    if old_size == 0:
        return
    if proof is None or (proof.size1, proof.size2) != (old_size, new.size):
        raise ConsistencyError(f"a consistency proof from {old_size} to {new.size} is needed")
    try:
        verify_consistency(old_size, new.size, old_root, new.root_hash, proof.hashes)
    except ProofError as exc:
        raise ConsistencyError(f"checkpoint {new.size} does not extend {old_size}: {exc}") from exc


Submit = Callable[[str, ConsistencyProof | None], Receipt]


class EdgeAnchor:
    """The edge's side: issue a checkpoint, submit it with a consistency proof, keep the receipt."""

    def __init__(self, log: TransparencyLog, cloud: NoteVerifier) -> None:
        self.log = log
        self.cloud = cloud

    def last_anchored_size(self) -> int | None:
        with Session(self.log.store.engine) as session:
            return session.execute(
                select(LedgerReceipt.checkpoint_size).order_by(LedgerReceipt.id.desc()).limit(1)
            ).scalar_one_or_none()

    def anchor(self, submit: Submit) -> Receipt:
        signed = self.log.issue_checkpoint()
        previous = self.last_anchored_size()
        proof = None
        if previous and previous < signed.checkpoint.size:
            proof = self.log.store.consistency_proof(previous, signed.checkpoint.size)
        receipt = submit(signed.render(), proof)
        receipt.verify(self.cloud)
        if receipt.edge_checkpoint != signed.render():
            raise ProofError("receipt is for another checkpoint than the one submitted")
        with Session(self.log.store.engine) as session, session.begin():
            session.add(
                LedgerReceipt(
                    checkpoint_size=signed.checkpoint.size,
                    receipt=json.dumps(receipt.to_json(), sort_keys=True),
                    received_at=datetime.now(UTC),
                )
            )
        return receipt

    def receipts(self) -> list[Receipt]:
        with Session(self.log.store.engine) as session:
            rows = session.execute(select(LedgerReceipt.receipt).order_by(LedgerReceipt.id))
            return [Receipt.from_json(json.loads(r)) for r in rows.scalars()]
