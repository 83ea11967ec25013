"""Transactional outbox: what the cloud must learn is written with the change it reports.

:func:`enqueue` adds a message inside the caller's open transaction, so a workflow step, its ledger
entry and the message reporting it commit together or not at all. :class:`OutboxDispatcher` later
pushes pending messages to the cloud, oldest first:

* at least once from here, exactly once as the cloud sees it: every message carries a CloudEvents
  ``id`` (UUID) the cloud deduplicates on, so a push repeated after a crash or a lost answer is
  acknowledged as ``duplicate`` and marked sent;
* a transport failure leaves the message pending with ``next_attempt_at`` pushed back by
  full-jitter exponential backoff (so edges that lost the link together do not return together);
* a refusal for good (the cloud answered with a code) marks the message *dead*: kept, counted,
  shown by :meth:`OutboxDispatcher.dead`, never retried and never silently dropped;
* a double use of an offline package reported by the cloud goes to ``on_double_use``.

Some event types are not plain sync events but calls of their own (a ledger checkpoint is
submitted to the log of logs); those are delivered one by one through ``handlers``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from forecourt.blobs import RetryPolicy
from forecourt.edge.cloud_client import (
    ACTIVATION_COMPLETED_EVENT,
    OFFLINE_PACKAGE_USED_EVENT,
    CloudClient,
    CloudRefused,
    CloudUnreachable,
    DoubleUse,
    OutgoingEvent,
)
from forecourt.edge.operators.clock import Clock, system_clock
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOutboxMessage

_log = get_logger("edge.outbox")

WORKFLOW_STEP: Final = "forecourt.edge.workflow.step.v1"
ACTIVATION_COMPLETED: Final = ACTIVATION_COMPLETED_EVENT
CONSENT_RECORDED: Final = "forecourt.edge.consent.recorded.v1"
OFFLINE_PACKAGE_USED: Final = OFFLINE_PACKAGE_USED_EVENT
LEDGER_CHECKPOINT: Final = "forecourt.edge.ledger.checkpoint.v1"

#: An event type delivered by its own call; raises CloudUnreachable (retry) or CloudRefused (dead).
Handler = Callable[[OutgoingEvent], None]


def enqueue(
    session: Session,
    event_type: str,
    data: Mapping[str, Any],
    *,
    now: datetime,
    subject: str | None = None,
    event_id: str | None = None,
) -> str:
    """Add a message in ``session``'s transaction; returns its event id."""
    event_id = event_id or str(uuid.uuid4())
    session.add(
        EdgeOutboxMessage(
            event_id=event_id,
            event_type=event_type,
            subject=subject,
            payload=dict(data),
            created_at=now,
            attempts=0,
            next_attempt_at=now,
            sent_at=None,
            last_error=None,
            dead_at=None,
        )
    )
    return event_id


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What one pass did."""

    sent: int = 0
    duplicates: int = 0
    retried: int = 0
    dead: int = 0
    double_uses: tuple[DoubleUse, ...] = ()

    @property
    def unreachable(self) -> bool:
        return self.retried > 0


@dataclass(frozen=True, slots=True)
class DeadMessage:
    event_id: str
    event_type: str
    subject: str | None
    error: str | None
    dead_at: datetime


class OutboxDispatcher:
    """Pushes due outbox messages to the cloud; safe to run from several threads or processes."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cloud: CloudClient,
        *,
        clock: Clock = system_clock,
        retry: RetryPolicy | None = None,
        batch_size: int = 100,
        handlers: Mapping[str, Handler] | None = None,
        on_double_use: Callable[[DoubleUse], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cloud = cloud
        self._clock = clock
        self._retry = retry or RetryPolicy(max_attempts=1_000_000, base_delay=1.0, max_delay=300.0)
        self._batch = batch_size
        self._handlers = dict(handlers or {})
        self._on_double_use = on_double_use

    def add_handler(self, event_type: str, handler: Handler) -> None:
        self._handlers[event_type] = handler

    def drain(self) -> DrainReport:
        """Deliver every message due now (in batches) until none is due or the link fails."""
        total = DrainReport()
        while True:
            report = self._pass()
            total = DrainReport(
                total.sent + report.sent,
                total.duplicates + report.duplicates,
                total.retried + report.retried,
                total.dead + report.dead,
                total.double_uses + report.double_uses,
            )
            if report.retried or (report.sent + report.duplicates + report.dead) == 0:
                return total

    def retry_now(self) -> int:
        """Make every pending message due now (the link is back: do not wait out the backoff).

        Returns how many were rescheduled."""
        now = self._clock()
        with self._sessions.begin() as s:
            return int(
                s.execute(
                    update(EdgeOutboxMessage)
                    .where(
                        EdgeOutboxMessage.sent_at.is_(None),
                        EdgeOutboxMessage.dead_at.is_(None),
                        EdgeOutboxMessage.next_attempt_at > now,
                    )
                    .values(next_attempt_at=now)
                ).rowcount  # type: ignore[attr-defined]
            )

    def pending_count(self) -> int:
        with self._sessions() as s:
            return int(
                s.execute(
                    select(func.count())
                    .select_from(EdgeOutboxMessage)
                    .where(EdgeOutboxMessage.sent_at.is_(None), EdgeOutboxMessage.dead_at.is_(None))
                ).scalar_one()
            )

    def dead(self) -> list[DeadMessage]:
        with self._sessions() as s:
            rows = s.execute(
                select(EdgeOutboxMessage)
                .where(EdgeOutboxMessage.dead_at.is_not(None))
                .order_by(EdgeOutboxMessage.id)
            ).scalars()
            return [
                DeadMessage(r.event_id, r.event_type, r.subject, r.last_error, r.dead_at)
                for r in rows
                if r.dead_at is not None
            ]

    # -- internals -------------------------------------------------------------------------------

    def _due(self) -> list[OutgoingEvent]:
        now = self._clock()
        with self._sessions() as s:
            rows = s.execute(
                select(EdgeOutboxMessage)
                .where(
                    EdgeOutboxMessage.sent_at.is_(None),
                    EdgeOutboxMessage.dead_at.is_(None),
                    EdgeOutboxMessage.next_attempt_at <= now,
                )
                .order_by(EdgeOutboxMessage.id)
                .limit(self._batch)
            ).scalars()
            return [
                OutgoingEvent(r.event_id, r.event_type, r.subject, r.created_at, r.payload)
                for r in rows
            ]

    def _pass(self) -> DrainReport:
        due = self._due()
        if not due:
            return DrainReport()
        special = [e for e in due if e.event_type in self._handlers]
        plain = [e for e in due if e.event_type not in self._handlers]
        sent = duplicates = retried = dead = 0
        doubles: tuple[DoubleUse, ...] = ()
        if plain:
            try:
                outcome = self._cloud.push_events(plain)
            except CloudUnreachable as exc:
                self._retry_later([e.event_id for e in plain], str(exc))
                retried += len(plain)
            except CloudRefused as exc:
                # The batch as a whole was refused: each message is retried alone next time,
                # so one bad message cannot hold back the others forever.
                self._retry_later([e.event_id for e in plain], str(exc))
                retried += len(plain)
            else:
                self._mark_sent(outcome.accepted)
                self._mark_sent(outcome.duplicates)
                for event_id, code in outcome.rejected:
                    self._mark_dead(event_id, code)
                sent += len(outcome.accepted)
                duplicates += len(outcome.duplicates)
                dead += len(outcome.rejected)
                doubles = outcome.double_uses
                for double in doubles:
                    _log.error(
                        "offline_package_double_use",
                        package_id=double.package_id,
                        vin=double.vin,
                        detail=double.detail,
                    )
                    if self._on_double_use is not None:
                        self._on_double_use(double)
        for event in special:
            if retried:
                break  # the link is down: do not hammer it with the rest of the batch
            try:
                self._handlers[event.event_type](event)
            except CloudUnreachable as exc:
                self._retry_later([event.event_id], str(exc))
                retried += 1
            except CloudRefused as exc:
                self._mark_dead(event.event_id, ",".join(exc.codes) or str(exc.status))
                dead += 1
            else:
                self._mark_sent([event.event_id])
                sent += 1
        return DrainReport(sent, duplicates, retried, dead, doubles)

    def _mark_sent(self, event_ids: tuple[str, ...] | list[str]) -> None:
        if not event_ids:
            return
        with self._sessions.begin() as s:
            s.execute(
                update(EdgeOutboxMessage)
                .where(EdgeOutboxMessage.event_id.in_(list(event_ids)))
                .where(EdgeOutboxMessage.sent_at.is_(None))
                .values(sent_at=self._clock(), attempts=EdgeOutboxMessage.attempts + 1)
            )

    def _mark_dead(self, event_id: str, error: str) -> None:
        _log.error("outbox_message_refused", event_id=event_id, error=error)
        with self._sessions.begin() as s:
            s.execute(
                update(EdgeOutboxMessage)
                .where(EdgeOutboxMessage.event_id == event_id)
                .values(
                    dead_at=self._clock(),
                    last_error=error[:2000],
                    attempts=EdgeOutboxMessage.attempts + 1,
                )
            )

    def _retry_later(self, event_ids: list[str], error: str) -> None:
        now = self._clock()
        with self._sessions.begin() as s:
            rows = s.execute(
                select(EdgeOutboxMessage).where(EdgeOutboxMessage.event_id.in_(event_ids))
            ).scalars()
            for row in rows:
                row.attempts += 1
                row.last_error = error[:2000]
                row.next_attempt_at = now + timedelta(seconds=self._retry.delay(row.attempts))
        _log.info("outbox_retry_scheduled", count=len(event_ids), error=error)
