"""The auditor's view of the edge ledger: entries, each with its RFC 9162 inclusion proof.

The proofs are against the latest signed checkpoint, whose signature is checked here with the
log's own verifier; the page then recomputes every leaf hash from the payload it shows and walks
the proof to the checkpoint's root in the browser (``console.js``), so an entry altered in the
database shows as "altered" without trusting this server's word for it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.ledger.checkpoint import Checkpoint, SignedCheckpoint, SignedNote
from forecourt.ledger.errors import LedgerError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import entry_leaf_hash
from forecourt.ledger.wire import inclusion_to_json


@dataclass(frozen=True, slots=True)
class CheckpointView:
    origin: str
    size: int
    root_b64: str
    note: str
    signature_valid: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.size,
            "root_hash": self.root_b64,
            "note": self.note,
            "signature_valid": self.signature_valid,
        }


def latest_checkpoint(log: TransparencyLog) -> CheckpointView:
    """The newest signed checkpoint (one is issued if the log has none yet), signature checked."""
    note = log.store.latest_checkpoint_note()
    if note is None or _size_of(note) < log.store.size():
        note = log.issue_checkpoint().render()
    checkpoint = Checkpoint.parse(SignedNote.parse(note).text)
    try:
        SignedCheckpoint.open(note, log.verifier)
        valid = True
    except LedgerError:
        valid = False
    return CheckpointView(
        checkpoint.origin,
        checkpoint.size,
        base64.b64encode(checkpoint.root_hash).decode(),
        note,
        valid,
    )


def _size_of(note: str) -> int:
    lines = note.split("\n")
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else 0


def entries_with_proofs(
    log: TransparencyLog, checkpoint: CheckpointView, *, newest: int
) -> list[dict[str, Any]]:
    """The ``newest`` latest entries under ``checkpoint``, each with its inclusion proof."""
    end = checkpoint.size
    start = max(0, end - newest)
    out: list[dict[str, Any]] = []
    for entry in reversed(log.store.entries(start, end)):
        proof = log.store.inclusion_proof(entry.index, end)
        out.append(
            {
                "index": entry.index,
                "payload": base64.b64encode(entry.payload).decode(),
                "record": _decode(entry.payload),
                "leaf_hash": base64.b64encode(entry_leaf_hash(entry.index, entry.payload)).decode(),
                "proof": inclusion_to_json(proof),
            }
        )
    return out


def entry_with_proof(
    log: TransparencyLog, checkpoint: CheckpointView, index: int
) -> dict[str, Any]:
    if not 0 <= index < checkpoint.size:
        raise ConsoleProblem(
            404,
            ProblemCode.LEDGER_ENTRY_NOT_FOUND,
            "No such entry",
            f"entry {index} is not below checkpoint size {checkpoint.size}",
        )
    (entry,) = log.store.entries(index, index + 1)
    return {
        "index": entry.index,
        "payload": base64.b64encode(entry.payload).decode(),
        "record": _decode(entry.payload),
        "proof": inclusion_to_json(log.store.inclusion_proof(index, checkpoint.size)),
    }


def _decode(payload: bytes) -> dict[str, Any]:
    """The record as JSON for display; unreadable bytes are shown as such, never hidden."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {"unreadable": True}
    return value if isinstance(value, dict) else {"unreadable": True}
