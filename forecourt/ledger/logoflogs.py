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
ProveConsistency = Callable[[int, int], ConsistencyProof]
"""``(size1, size2) -> PROOF(size1, D[size2])`` from the cloud log (its ``/proof/consistency``)."""


class EdgeAnchor:
    """The edge's side: issue a checkpoint, submit it with a consistency proof, keep the receipt.

    A receipt proves the cloud logged our checkpoint under *one* signed cloud checkpoint. That is
    only worth keeping if the cloud log later still contains it: :meth:`recheck` proves that a
    kept receipt's cloud checkpoint is a prefix of a newer one, so a cloud that rewrote or forked
    its log (showing us one history and others another) is caught by the next recheck.
    """

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

    def recheck(
        self,
        newer_cloud_checkpoint: str,
        consistency_proof: ConsistencyProof,
        receipt: Receipt | None = None,
    ) -> Receipt:
        """Prove that a kept receipt still stands under a newer signed cloud checkpoint.

        ``receipt`` defaults to the newest kept receipt whose cloud checkpoint has
        ``consistency_proof.size1`` entries. Checks the newer checkpoint's signature, the receipt
        itself, and that the newer tree extends the receipt's (RFC 9162 consistency); a smaller
        size is a rollback, the same size with another root or a proof that fails is a fork.
        Raises :class:`NoteError`, :class:`ProofError` or :class:`ConsistencyError`; a refusal
        is logged and changes nothing. Returns the receipt that was rechecked.
        """
        try:
            return self._recheck(newer_cloud_checkpoint, consistency_proof, receipt)
        except (NoteError, ConsistencyError, ProofError) as exc:
            log.warning("ledger.receipt_recheck_refused", origin=self.log.origin, reason=str(exc))
            raise

    def _recheck(
        self, newer_note: str, proof: ConsistencyProof, receipt: Receipt | None
    ) -> Receipt:
        newer = SignedCheckpoint.open(newer_note, self.cloud).checkpoint
        if receipt is None:
            receipt = self._receipt_at(proof.size1)
        held = receipt.verify(self.cloud).checkpoint
        if proof.size1 != held.size or proof.size2 != newer.size:
            raise ProofError(
                f"consistency proof is from {proof.size1} to {proof.size2}, the receipt needs "
                f"one from {held.size} to {newer.size}"
            )
        try:
            _check_extends(held.size, held.root_hash, newer, proof)
        except ConsistencyError as exc:
            raise ConsistencyError(f"cloud log {newer.origin!r}: {exc}") from exc
        log.info(
            "ledger.receipt_rechecked",
            origin=self.log.origin,
            cloud_index=receipt.cloud_index,
            from_size=held.size,
            to_size=newer.size,
        )
        return receipt

    def _receipt_at(self, cloud_size: int) -> Receipt:
        for kept in reversed(self.receipts()):
            if Checkpoint.parse(SignedNote.parse(kept.cloud_checkpoint).text).size == cloud_size:
                return kept
        raise ProofError(f"no kept receipt under a cloud checkpoint of size {cloud_size}")

    def recheck_all(self, newer_cloud_checkpoint: str, prove: ProveConsistency) -> int:
        """:meth:`recheck` every kept receipt against one newer cloud checkpoint; returns how
        many. Stops at the first refusal (which is raised and logged)."""
        newer = SignedCheckpoint.open(newer_cloud_checkpoint, self.cloud).checkpoint
        proofs: dict[int, ConsistencyProof] = {}
        kept = self.receipts()
        for receipt in kept:
            size = receipt.proof.size
            if size not in proofs:
                proofs[size] = (
                    ConsistencyProof(size, size, ())
                    if size == newer.size
                    else prove(size, newer.size)
                )
            self.recheck(newer_cloud_checkpoint, proofs[size], receipt)
        return len(kept)

    def receipts(self) -> list[Receipt]:
        with Session(self.log.store.engine) as session:
            rows = session.execute(select(LedgerReceipt.receipt).order_by(LedgerReceipt.id))
            return [Receipt.from_json(json.loads(r)) for r in rows.scalars()]
