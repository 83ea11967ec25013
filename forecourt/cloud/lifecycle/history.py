"""A car's activations, ownership and lifecycle history, provable to a third party with the log
key alone.

The cloud answers a VIN with every ledger record its lifecycle changes wrote and every record of
its applied activations (which the ledger follower, :mod:`forecourt.cloud.activations.ledger`,
appends seconds after the edge's report), each with an inclusion proof against one signed
checkpoint (issued on the spot when the latest one does not cover the records yet). Records are
listed in time order (their timestamp, then their index): an activation is logged after the fact,
so a handover a moment later may hold a lower index. Each record is in the form ``forecourt ledger
verify inclusion`` reads (``index``, ``tree_size``, ``hashes``, ``payload``), so a buyer or an
insurer can check any one of them with the published log key and nothing else;
:func:`verify_history` checks them all.

What a proof shows: each record is in the log the checkpoint describes, unchanged. What it does
not show: that no record was left out (that takes the whole log: ``forecourt ledger export`` and
``verify log``). Owners appear only as commitments: a seller can prove "this car was mine" by
handing over the salt, nobody else learns who owned it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from forecourt.cloud.lifecycle.service import LIFECYCLE_ACTION
from forecourt.ledger.checkpoint import NoteVerifier, SignedCheckpoint
from forecourt.ledger.entry import ActivityRecord, decode_record
from forecourt.ledger.errors import EntryError, ExportFormatError, ProofError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.merkle import leaf_hash
from forecourt.ledger.repository import leaf_input
from forecourt.ledger.wire import b64d, b64e, inclusion_from_json, inclusion_to_json
from forecourt.store.ledger import LedgerCheckpoint
from forecourt.store.registry import ActivationRow, AuditRow

HISTORY_VERSION = 1


@dataclass(frozen=True, slots=True)
class LifecycleEntry:
    """One lifecycle change as its audit row keeps it (the dossier shows these)."""

    at: datetime
    event: str
    from_state: str
    to_state: str
    dealer_id: str | None
    origin: str
    indices: tuple[int, ...]
    ended_entitlements: tuple[int, ...]


def lifecycle_entries(session: Session, vin: str) -> tuple[list[LifecycleEntry], int | None]:
    """The car's lifecycle changes, oldest first, and the size of the cloud log's latest signed
    checkpoint (``None`` before the first), in one statement: the dossier's cost stays flat."""
    anchored = select(func.max(LedgerCheckpoint.size)).scalar_subquery()
    rows = session.execute(
        select(AuditRow, anchored)
        .where(AuditRow.action == LIFECYCLE_ACTION, AuditRow.subject == vin)
        .order_by(AuditRow.id)
    ).all()
    if not rows:
        return [], None
    size = rows[0][1]
    return [_entry(row) for row, _size in rows], None if size is None else int(size)


def _entry(row: AuditRow) -> LifecycleEntry:
    detail: Mapping[str, Any] = row.detail
    ledger: Mapping[str, Any] = detail["ledger"]
    return LifecycleEntry(
        at=row.at,
        event=str(detail["event"]),
        from_state=str(detail["from"]),
        to_state=str(detail["to"]),
        dealer_id=row.dealer_id,
        origin=str(ledger["origin"]),
        indices=tuple(int(i) for i in ledger["indices"]),
        ended_entitlements=tuple(int(i) for i in detail.get("ended_entitlements", ())),
    )


def history_document(log: TransparencyLog, session: Session, vin: str) -> dict[str, Any]:
    """Every ledger record of ``vin``'s lifecycle and activations, in time order, with its proof
    against one signed checkpoint."""
    entries, _anchored = lifecycle_entries(session, vin)
    activations = session.scalars(
        select(ActivationRow.ledger_index).where(
            ActivationRow.vin == vin, ActivationRow.ledger_index.is_not(None)
        )
    )
    indices = sorted(
        {i for e in entries if e.origin == log.origin for i in e.indices}
        | {int(i) for i in activations if i is not None}
    )
    note = log.store.latest_checkpoint_note()
    signed = SignedCheckpoint.open(note, log.verifier) if note is not None else None
    if signed is None or (indices and signed.checkpoint.size <= indices[-1]):
        signed = log.issue_checkpoint()
    size = signed.checkpoint.size
    records = []
    for index in indices:
        entry = log.store.entries(index, index + 1)[0]
        proof = log.store.inclusion_proof(index, size)
        records.append(
            {
                **inclusion_to_json(proof),
                "payload": b64e(entry.payload),
                "record": decode_record(entry.payload).to_dict(),
            }
        )
    records.sort(key=lambda item: (item["record"]["timestamp"], item["index"]))
    return {
        "history_version": HISTORY_VERSION,
        "vin": vin,
        "origin": log.origin,
        "checkpoint": signed.render(),
        "records": records,
    }


def verify_history(
    document: Mapping[str, Any], verifier: NoteVerifier, vin: str
) -> list[ActivityRecord]:
    """Check a history offline against the log's published key; the records, oldest first.

    Raises a :class:`~forecourt.ledger.errors.LedgerError`: ``NoteError`` when the checkpoint is
    not signed by the key, ``ProofError`` when a record is not in the log it describes (altered,
    or proved against another checkpoint), ``EntryError`` when a record is not about ``vin``, is
    not an activity record, or is listed twice or out of time order (timestamp, then index),
    ``ExportFormatError`` when the document is malformed.
    """
    note = document.get("checkpoint")
    raw = document.get("records")
    if not isinstance(note, str) or not isinstance(raw, list):
        raise ExportFormatError("a history has a 'checkpoint' note and a 'records' list")
    signed = SignedCheckpoint.open(note, verifier)
    records = [_verified(item, signed, vin) for item in _objects(raw)]
    indices = [int(item["index"]) for item in raw]
    _once_each_in_time_order([(r.timestamp, i) for r, i in zip(records, indices, strict=True)])
    return records


def _once_each_in_time_order(keys: Sequence[tuple[datetime, int]]) -> None:
    """A record listed twice would show an event twice (a second owner, a second service); one
    listed out of order would tell another story (a transfer before the activation it followed).
    Records of one moment are listed in log order."""
    for (before_at, before), (at, index) in pairwise(keys):
        if index == before:
            raise EntryError(f"record {index} is listed twice")
        if (at, index) < (before_at, before):
            raise EntryError(f"record {index} is listed after record {before} (not in time order)")


def _objects(raw: Sequence[object]) -> list[Mapping[str, Any]]:
    if not all(isinstance(item, dict) for item in raw):
        raise ExportFormatError("every history record is a JSON object")
    return [item for item in raw if isinstance(item, dict)]


def _verified(item: Mapping[str, Any], signed: SignedCheckpoint, vin: str) -> ActivityRecord:
    proof = inclusion_from_json(item)
    if proof.size != signed.checkpoint.size:
        raise ProofError(
            f"record {proof.index} is proved at size {proof.size}, "
            f"the checkpoint is of size {signed.checkpoint.size}"
        )
    payload = b64d(item.get("payload"), "payload")
    proof.verify(leaf_hash(leaf_input(proof.index, payload)), signed.checkpoint.root_hash)
    record = decode_record(payload)
    if not isinstance(record, ActivityRecord) or record.vin != vin:
        raise EntryError(f"record {proof.index} is not about {vin}")
    return record
