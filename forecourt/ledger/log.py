"""A signed transparency log: the store plus the log's identity (origin) and signing key.

This is what the edge and the cloud hold: append records (personal data committed, salts kept
apart, all in one transaction), and issue signed checkpoints on demand or on a schedule.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from forecourt.ledger.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    SignedCheckpoint,
    verifier_for,
)
from forecourt.ledger.entry import (
    ActivityRecord,
    DealerEventRecord,
    EdgeCheckpointRecord,
    commit,
)
from forecourt.ledger.repository import MerkleLogStore
from forecourt.logging import get_logger

log = get_logger("ledger")


class TransparencyLog:
    """One origin, one key, one store."""

    def __init__(
        self,
        store: MerkleLogStore,
        origin: str,
        signer: NoteSigner,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.origin = origin
        self.signer = signer
        self.clock = clock

    @property
    def verifier(self) -> NoteVerifier:
        return verifier_for(self.origin, self.signer)

    def append_activities(
        self, items: Sequence[tuple[ActivityRecord, Mapping[str, str]]]
    ) -> list[int]:
        """Append records; ``personal`` values become commitments, their salts go apart."""
        with Session(self.store.engine) as session, session.begin():
            indices = append_activities_in(self.store, session, items)
        log.info("ledger.appended", origin=self.origin, count=len(indices))
        return indices

    def append_activities_in(
        self, session: Session, items: Sequence[tuple[ActivityRecord, Mapping[str, str]]]
    ) -> list[int]:
        """:meth:`append_activities` inside the caller's transaction, so a business change and
        the records that describe it commit or roll back together (see
        :func:`append_activities_in`)."""
        return append_activities_in(self.store, session, items)

    def append_edge_checkpoint(self, session: Session, origin: str, note: str) -> int:
        return self.store.append_in(session, [EdgeCheckpointRecord(origin, note).encode()])[0]

    def issue_checkpoint(self) -> SignedCheckpoint:
        """Sign the current (size, root) and keep the signed note."""
        size, root = self.store.root()
        signed = SignedCheckpoint.issue(Checkpoint(self.origin, size, root), self.signer)
        self.store.save_checkpoint(signed, self.clock())
        log.info("ledger.checkpoint_issued", origin=self.origin, size=size)
        return signed

    async def run_checkpoint_schedule(self, interval_s: float, stop: asyncio.Event) -> None:
        """Issue a checkpoint every ``interval_s`` seconds until ``stop`` is set."""
        while not stop.is_set():
            await asyncio.to_thread(self.issue_checkpoint)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                continue


def append_activities_in(
    store: MerkleLogStore,
    session: Session,
    items: Sequence[tuple[ActivityRecord, Mapping[str, str]]],
) -> list[int]:
    """Append activity records in ``session``'s transaction; nothing is committed here.

    ``personal`` values become commitments in the leaf and their salts are written apart, in the
    same transaction. Call it once per transaction with every record of the change: the store
    caches the hashes of complete subtrees it reads, and only subtrees that are already committed
    may be read (a second batch in one transaction would read the first one's rows, which a
    rollback then discards). Needs no signing key: checkpoints are issued elsewhere.
    """
    return _append_committed_in(store, session, items)


def append_dealer_events_in(
    store: MerkleLogStore,
    session: Session,
    items: Sequence[tuple[DealerEventRecord, Mapping[str, str]]],
) -> list[int]:
    """:func:`append_activities_in` for dealer-level events (operator accounts and their roles).

    ``personal`` holds ``actor_id`` and ``subject_id``; both become commitments, their salts are
    written apart in the same transaction. The same rule holds: once per transaction.
    """
    return _append_committed_in(store, session, items)


def _append_committed_in(
    store: MerkleLogStore,
    session: Session,
    items: Sequence[tuple[ActivityRecord | DealerEventRecord, Mapping[str, str]]],
) -> list[int]:
    """The one place a record's personal values are committed and their salts kept apart."""
    prepared: list[tuple[bytes, dict[str, bytes]]] = []
    for record, personal in items:
        commitments, salts = commit(personal)
        full = dataclasses.replace(record, commitments={**record.commitments, **commitments})
        prepared.append((full.encode(), salts))
    indices = store.append_in(session, [p for p, _ in prepared])
    for index, (_, salts) in zip(indices, prepared, strict=True):
        store.save_salts(session, index, salts)
    return indices
