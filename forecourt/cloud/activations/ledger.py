"""Applied activations become records of the cloud's Merkle log, off the authorisation path.

The product's ledger must show a car's activations to third parties (used-car buyers, insurers)
beside its ownership changes. Appending a leaf takes the log's head lock, which every appender
in every process waits on; the authorisation and its report must not wait on it. So the report
only marks the activation ``applied`` and a follower, running every few seconds in each server
process (:func:`follow_forever`), logs what is not logged yet:

* A step claims up to ``batch`` applied activations whose ``ledger_index`` is NULL, oldest
  first, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a row another follower holds is skipped,
  never waited on, and a row another follower has logged no longer matches.
* It appends one ``activation`` :class:`~forecourt.ledger.entry.ActivityRecord` per row (VIN,
  features, dealer, the authorisation's time, the operator only as a salted commitment, the
  bundle's SHA-256 as evidence) and sets each row's ``ledger_index``, in **one** transaction:
  both commit or neither does, so an activation is logged once or not yet, never twice.
* The append itself serialises on the log's head row (see
  :func:`~forecourt.ledger.sqlrows.advance_head`), so concurrent followers, lifecycle changes
  and operator events each get a contiguous run of indices and never interleave inside a batch.
  The marking is guarded (``WHERE ledger_index IS NULL``, one row each): a row found logged
  already rolls the whole step back (:class:`ActivationAlreadyLogged`). On SQLite, where there
  is no row lock, a second writer's stale read fails at its first write and rolls back instead.

The authorisation path gains no statement: the report writes ``status`` as before, and rows the
follower holds are ``applied`` ones, which the report never updates.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from forecourt.cloud.db import Database
from forecourt.cloud.lifecycle.service import CLOUD_EDGE
from forecourt.ledger.entry import ActivityRecord, EventKind, NetworkEnvironment
from forecourt.ledger.errors import EntryError, LedgerError
from forecourt.ledger.log import append_activities_in
from forecourt.ledger.repository import MerkleLogStore
from forecourt.logging import get_logger
from forecourt.store.registry import ActivationRow

_log = get_logger("cloud.activations.ledger")

#: The status an activation has once its edge reported the car applied it.
APPLIED = "applied"
#: Activations logged per step (one transaction, one append); a backlog takes several steps.
DEFAULT_BATCH = 200
#: Seconds between follower steps when there is nothing left to catch up on.
DEFAULT_INTERVAL_S = 2.0


class ActivationAlreadyLogged(LedgerError):
    """An activation claimed by this step was logged by another one meanwhile; nothing of the
    step is kept (the next step finds only what is still unlogged)."""


@dataclass(frozen=True, slots=True)
class FollowResult:
    """What one step logged: ``(request_id, ledger_index)`` pairs, in log order."""

    logged: tuple[tuple[str, int], ...] = ()

    @property
    def count(self) -> int:
        return len(self.logged)


def activation_record(row: ActivationRow) -> ActivityRecord:
    """The leaf that says ``row`` happened: no person in clear (the operator is committed by
    :func:`~forecourt.ledger.log.append_activities_in`), the bundle pinned by its SHA-256."""
    outcome: Mapping[str, Any] = row.outcome or {}
    evidence = () if row.bundle is None else (hashlib.sha256(row.bundle).hexdigest(),)
    return ActivityRecord(
        timestamp=row.created_at,
        kind=EventKind.ACTIVATION,
        vin=row.vin,
        dealer_id=row.dealer_id,
        edge_id=CLOUD_EDGE,
        network=NetworkEnvironment.ONLINE,
        response_status=APPLIED,
        features=tuple(str(f) for f in outcome.get("features", ())),
        evidence_hashes=evidence,
    )


class ActivationLedgerFollower:
    """Logs applied activations into the cloud's log, ``batch`` at a time (see the module)."""

    def __init__(self, db: Database, store: MerkleLogStore, batch: int = DEFAULT_BATCH) -> None:
        if batch <= 0:
            raise ValueError(f"a follower step logs at least one activation, not {batch}")
        self._db = db
        self._store = store
        self.batch = batch

    def step(self) -> FollowResult:
        """Log up to ``batch`` applied, unlogged activations in one transaction."""
        with self._db.transaction() as session:
            rows = self._claim(session)
            items = self._records(rows)
            if not items:
                return FollowResult()
            indices = append_activities_in(
                self._store, session, [(record, personal) for _, record, personal in items]
            )
            logged = tuple(
                (row.request_id, index) for (row, _, _), index in zip(items, indices, strict=True)
            )
            self._mark(session, logged)
        _log.info("activations_logged", count=len(logged), first=indices[0], last=indices[-1])
        return FollowResult(logged)

    def _claim(self, session: Session) -> Sequence[ActivationRow]:
        return session.scalars(
            select(ActivationRow)
            .where(ActivationRow.status == APPLIED, ActivationRow.ledger_index.is_(None))
            .order_by(ActivationRow.created_at, ActivationRow.request_id)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        ).all()

    @staticmethod
    def _records(
        rows: Sequence[ActivationRow],
    ) -> list[tuple[ActivationRow, ActivityRecord, Mapping[str, str]]]:
        """A record per row; a row that cannot be one (a malformed VIN) is logged as an error and
        left out, so it cannot hold back the others."""
        items: list[tuple[ActivationRow, ActivityRecord, Mapping[str, str]]] = []
        for row in rows:
            try:
                record = activation_record(row)
            except EntryError as exc:
                _log.error("activation_not_loggable", request_id=row.request_id, detail=str(exc))
                continue
            items.append((row, record, {"operator_id": row.operator_id}))
        return items

    @staticmethod
    def _mark(session: Session, logged: Sequence[tuple[str, int]]) -> None:
        for request_id, index in logged:
            marked = session.execute(
                update(ActivationRow)
                .where(ActivationRow.request_id == request_id, ActivationRow.ledger_index.is_(None))
                .values(ledger_index=index)
                .execution_options(synchronize_session=False)
            )
            if marked.rowcount != 1:  # type: ignore[attr-defined]
                raise ActivationAlreadyLogged(f"activation {request_id} is logged already")

    def catch_up(self, stop: threading.Event | None = None) -> int:
        """Steps until a step logs less than a full batch (or ``stop`` is set); how many were
        logged. A backlog (after an outage, after the upgrade that added the log) drains here."""
        total = 0
        while stop is None or not stop.is_set():
            result = self.step()
            total += result.count
            if result.count < self.batch:
                break
        return total


async def follow_forever(
    follower: ActivationLedgerFollower,
    stop: threading.Event,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> None:
    """The server's follower loop: catch up, pause ``interval_s``, until ``stop``.

    The database work runs in a thread, so the event loop keeps answering requests. A failed run
    (database unreachable, another follower's row) is logged and tried again at the next tick; it
    never stops the server."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(follower.catch_up, stop)
        except (SQLAlchemyError, LedgerError) as exc:
            _log.error("activation_logging_failed", error=type(exc).__name__, detail=str(exc))
        await asyncio.sleep(interval_s)
