"""Delivering the outbox: fan out events to subscriptions, claim due deliveries, send, record.

One :meth:`WebhookDispatcher.run_once` does, each in its own short transaction:

1. **Fan out**: undispatched events are marked dispatched and get one ``pending`` delivery per
   enabled subscription that wants their type and existed when they occurred.
2. **Claim**: due deliveries of enabled subscriptions have their ``next_attempt_at`` moved a
   lease ahead and their attempt counted, in one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
   SKIP LOCKED) RETURNING``: on PostgreSQL concurrent workers (threads, processes, replicas)
   claim disjoint rows and never wait on each other; on SQLite the UPDATE takes the database's
   write lock, so a claim is atomic too (one cloud process writes a SQLite file).
3. **Send** outside any transaction, up to ``policy.concurrency`` at once (a slow partner does
   not hold up the others): ``POST`` of the event's JSON with the Standard Webhooks headers,
   signed with every valid secret, a timeout, redirects never followed. The connection is opened
   by :class:`~forecourt.cloud.integrations.destinations.VettingTransport`: the host is
   resolved once, every address vetted (globally routable only) and the vetted address dialled;
   a refused destination is a failed attempt (``destination_not_allowed``), never sent.
4. **Record**: 2xx is ``delivered``; anything else (status, timeout, refused connection or
   destination, a name that does not resolve) is
   retried after an exponential backoff with jitter, and ``dead`` once ``max_attempts`` are
   spent. The record is made only if the row is still this worker's claim (same attempt
   count), so a worker that outlived its lease cannot overwrite a newer attempt.

Delivery is at least once: a worker that dies between sending and recording leaves the row due
when its lease ends, and it is sent again with the same ``webhook-id``. Neither the secret nor
the body is logged; a failure is logged with the event id, subscription, status and error kind.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import httpcore
import httpx
from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from forecourt.cloud.config import utc_now
from forecourt.cloud.db import Database
from forecourt.cloud.integrations.destinations import (
    DestinationError,
    DestinationNotAllowed,
    DestinationPolicy,
    VettingTransport,
)
from forecourt.cloud.integrations.sealing import SecretSealer, SecretUnreadable, WebhookKeyError
from forecourt.cloud.integrations.subscriptions import (
    CANCELLED,
    DEAD,
    DELIVERED,
    PENDING,
    signing_secrets,
)
from forecourt.cloud.integrations.verify import secret_key, sign
from forecourt.logging import get_logger
from forecourt.store.registry import (
    OutboxEventRow,
    WebhookDeliveryRow,
    WebhookSubscriptionRow,
)

_log = get_logger("cloud.integrations.delivery")
USER_AGENT = "forecourt-webhooks/1"
RETRY = "retry"
_LOG_EVENTS = {
    DELIVERED: "webhook_delivered",
    RETRY: "webhook_retry_scheduled",
    DEAD: "webhook_dead_lettered",
}


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard the cloud tries: per-request timeout, retries, backoff, lease, batch sizes."""

    timeout_s: float = 10.0
    max_attempts: int = 8
    first_retry: timedelta = timedelta(seconds=30)
    max_retry: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=2)
    """Longer than a send can take (timeout), so no other worker takes a row still in flight."""
    claim_batch: int = 20
    concurrency: int = 8
    """Sends of one claim in flight at once: a slow partner does not hold up the others."""
    fan_out_batch: int = 200
    retention: timedelta = timedelta(days=30)
    """How long a dispatched event and its finished deliveries are kept (:meth:`prune`)."""
    prune_every: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.timeout_s <= 0 or self.claim_batch < 1:
            raise ValueError(f"unusable delivery policy {self}")
        if self.retention <= timedelta(0):
            raise ValueError("the retention must be positive")
        if self.concurrency < 1:
            raise ValueError(f"unusable delivery policy {self}")
        rounds = -(-self.claim_batch // self.concurrency)  # sends of one claim, one after another
        if self.lease.total_seconds() <= rounds * self.timeout_s:
            raise ValueError(
                f"the lease must outlast a claim's sends ({rounds} x the {self.timeout_s} s "
                "timeout), or another worker could send a delivery still in flight"
            )

    def backoff(self, attempt: int, rng: random.Random) -> timedelta:
        """Delay after failed attempt ``attempt`` (1-based): doubled each time, capped, then
        scaled by a random factor in [0.5, 1) so receivers recovering from an outage are not
        hit by every retry at once."""
        base = min(self.first_retry * (1 << min(attempt - 1, 30)), self.max_retry)
        return base * (0.5 + rng.random() / 2)


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: int
    event_seq: int
    subscription_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one send came to: ``status`` (HTTP) or ``error`` (no answer)."""

    delivery_id: int
    webhook_id: str
    subscription_id: str
    outcome: str
    status: int | None = None
    error: str | None = None


@dataclass
class RunReport:
    fanned_out: int = 0
    attempts: list[Attempt] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for a in self.attempts if a.outcome == outcome)


def event_body(event: OutboxEventRow) -> bytes:
    """The JSON every delivery of ``event`` sends, byte-identical on every retry."""
    document = {
        "type": event.event_type,
        "timestamp": event.occurred_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


class WebhookDispatcher:
    """Runs the delivery steps; the clock, randomness, destination policy (with its resolver)
    and the network below the vetting are injectable so a test drives it step by step without
    waiting.

    ``destinations`` defaults to :meth:`DestinationPolicy.from_environment`; the subscription
    routes vet URLs with the same policy. ``network_backend`` replaces the socket layer under
    the vetting (tests record what is dialled); ``ssl_context`` the default certificate store.
    """

    def __init__(
        self,
        db: Database,
        sealer: SecretSealer,
        *,
        policy: DeliveryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        destinations: DestinationPolicy | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._db = db
        self._sealer = sealer
        self.policy = policy or DeliveryPolicy()
        self.destinations = destinations or DestinationPolicy.from_environment()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._client = httpx.Client(
            timeout=self.policy.timeout_s,
            follow_redirects=False,
            transport=VettingTransport(
                self.destinations, ssl_context=ssl_context, inner=network_backend
            ),
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )
        self._pool = ThreadPoolExecutor(
            self.policy.concurrency, thread_name_prefix="webhook-send"
        )  # the client and the database pool are shared by the sends, both thread-safe

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def now(self) -> datetime:
        """The dispatcher's clock (injected in tests)."""
        return self._clock()

    def run_once(self, stop: threading.Event | None = None) -> RunReport:
        """Fan out every waiting event, then send every delivery due now, claim by claim.

        ``stop`` ends the run between two claims (a server shutting down)."""
        report = RunReport()
        stopping = stop or threading.Event()
        while not stopping.is_set() and (fanned := self.fan_out()):
            report.fanned_out += fanned
        while not stopping.is_set() and (claimed := self.claim()):
            report.attempts.extend(self._pool.map(self.send, claimed))
        return report

    def prune(self) -> tuple[int, int]:
        """Forget what is done: deliveries ``delivered`` or ``cancelled`` of events dispatched
        more than ``policy.retention`` ago, then those events if no delivery of theirs is left.

        A ``dead`` or ``pending`` delivery keeps its event (it may still be redelivered or sent),
        so nothing a partner could still receive is lost. Returns (deliveries, events) removed.
        Without it the outbox grows with every activation for ever."""
        cutoff = self._clock() - self.policy.retention
        old = select(OutboxEventRow.seq).where(
            OutboxEventRow.dispatched_at.is_not(None), OutboxEventRow.dispatched_at < cutoff
        )
        with self._db.transaction() as session:
            deliveries = _removed(
                session.execute(
                    delete(WebhookDeliveryRow).where(
                        WebhookDeliveryRow.event_seq.in_(old),
                        WebhookDeliveryRow.status.in_((DELIVERED, CANCELLED)),
                    )
                )
            )
            events = _removed(
                session.execute(
                    delete(OutboxEventRow).where(
                        OutboxEventRow.seq.in_(old),
                        ~select(WebhookDeliveryRow.id)
                        .where(WebhookDeliveryRow.event_seq == OutboxEventRow.seq)
                        .exists(),
                    )
                )
            )
        if deliveries or events:
            _log.info("webhook_outbox_pruned", deliveries=deliveries, events=events)
        return deliveries, events

    # -- steps --------------------------------------------------------------------------------

    def fan_out(self) -> int:
        """Make the deliveries of up to one batch of undispatched events; returns how many
        events were dispatched."""
        now = self._clock()
        with self._db.transaction() as session:
            waiting = (
                select(OutboxEventRow.seq)
                .where(OutboxEventRow.dispatched_at.is_(None))
                .order_by(OutboxEventRow.seq)
                .limit(self.policy.fan_out_batch)
                .with_for_update(skip_locked=True)
            )
            events = session.execute(
                update(OutboxEventRow)
                .where(OutboxEventRow.seq.in_(waiting.scalar_subquery()))
                .values(dispatched_at=now)
                .returning(
                    OutboxEventRow.seq, OutboxEventRow.event_type, OutboxEventRow.occurred_at
                )
                .execution_options(synchronize_session=False)
            ).all()
            if not events:
                return 0
            subscriptions = session.scalars(
                select(WebhookSubscriptionRow).where(WebhookSubscriptionRow.enabled.is_(True))
            ).all()
            session.add_all(
                WebhookDeliveryRow(
                    event_seq=seq,
                    subscription_id=sub.subscription_id,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    updated_at=now,
                )
                for seq, event_type, occurred_at in events
                for sub in subscriptions
                if event_type in sub.event_types and sub.created_at <= occurred_at
            )
        return len(events)

    def claim(self, limit: int | None = None) -> list[Claimed]:
        """Take up to ``limit`` due deliveries for this worker, for one lease."""
        now = self._clock()
        with self._db.transaction() as session:
            due = (
                select(WebhookDeliveryRow.id)
                .where(
                    WebhookDeliveryRow.status == PENDING,
                    WebhookDeliveryRow.next_attempt_at <= now,
                    WebhookDeliveryRow.subscription_id.in_(
                        select(WebhookSubscriptionRow.subscription_id).where(
                            WebhookSubscriptionRow.enabled.is_(True)
                        )
                    ),
                )
                .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.id)
                .limit(limit or self.policy.claim_batch)
                .with_for_update(skip_locked=True, of=WebhookDeliveryRow)
            )
            rows = session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id.in_(due.scalar_subquery()))
                .values(
                    next_attempt_at=now + self.policy.lease,
                    attempts=WebhookDeliveryRow.attempts + 1,
                    updated_at=now,
                )
                .returning(
                    WebhookDeliveryRow.id,
                    WebhookDeliveryRow.event_seq,
                    WebhookDeliveryRow.subscription_id,
                    WebhookDeliveryRow.attempts,
                )
                .execution_options(synchronize_session=False)
            ).all()
        return sorted((Claimed(*row) for row in rows), key=lambda c: c.delivery_id)

    def send(self, claimed: Claimed) -> Attempt:
        """Send one claimed delivery and record its outcome."""
        now = self._clock()
        with self._db.sessions() as session:
            event = session.get(OutboxEventRow, claimed.event_seq)
            subscription = session.get(WebhookSubscriptionRow, claimed.subscription_id)
            assert event is not None and subscription is not None  # foreign keys
            try:
                keys = [
                    secret_key(s)
                    for s in signing_secrets(
                        session, self._sealer, subscription.subscription_id, now
                    )
                ]
            except SecretUnreadable as exc:
                keys, unreadable = [], str(exc)
            else:
                unreadable = ""
            url, webhook_id, body = subscription.url, event.event_id, event_body(event)
        if not keys:
            return self._record(
                claimed, webhook_id, status=None, error=unreadable or "no valid signing secret"
            )
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(k, webhook_id, timestamp, body) for k in keys),
        }
        try:
            response = self._client.post(url, content=body, headers=headers)
        except DestinationError as exc:
            _log.warning(
                "webhook_destination_refused",
                webhook_id=webhook_id,
                subscription_id=claimed.subscription_id,
                host=exc.host,
                address=exc.address,
                reason=exc.reason,
            )
            refused = isinstance(exc, DestinationNotAllowed)
            error = "destination_not_allowed" if refused else "destination_unresolvable"
            return self._record(claimed, webhook_id, status=None, error=error)
        except httpx.TimeoutException:
            return self._record(claimed, webhook_id, status=None, error="timeout")
        except httpx.TransportError as exc:
            return self._record(claimed, webhook_id, status=None, error=type(exc).__name__)
        return self._record(claimed, webhook_id, status=response.status_code, error=None)

    def _record(
        self, claimed: Claimed, webhook_id: str, *, status: int | None, error: str | None
    ) -> Attempt:
        now = self._clock()
        values: dict[str, Any] = {"last_status": status, "last_error": error, "updated_at": now}
        if status is not None and 200 <= status < 300:
            outcome = DELIVERED
            values |= {"status": DELIVERED, "delivered_at": now, "last_error": None}
        elif claimed.attempts >= self.policy.max_attempts:
            outcome = DEAD
            values |= {"status": DEAD}
        else:
            outcome = RETRY
            values |= {"next_attempt_at": now + self.policy.backoff(claimed.attempts, self._rng)}
        if status is not None and outcome != DELIVERED:
            values["last_error"] = f"http {status}"
        with self._db.transaction() as session:
            _still_ours(session, claimed, values)
        log = _log.info if outcome == DELIVERED else _log.warning
        log(
            _LOG_EVENTS[outcome],
            webhook_id=webhook_id,
            subscription_id=claimed.subscription_id,
            attempt=claimed.attempts,
            status=status,
            error=values.get("last_error"),
        )
        return Attempt(
            claimed.delivery_id, webhook_id, claimed.subscription_id, outcome, status, error
        )


def _removed(result: Result[Any]) -> int:
    """Rows a DELETE removed (a DELETE's result is a cursor result, which counts them)."""
    return cast(CursorResult[Any], result).rowcount


def _still_ours(session: Session, claimed: Claimed, values: dict[str, Any]) -> None:
    session.execute(
        update(WebhookDeliveryRow)
        .where(
            WebhookDeliveryRow.id == claimed.delivery_id,
            WebhookDeliveryRow.attempts == claimed.attempts,
            WebhookDeliveryRow.status == PENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def deliver_forever(
    dispatcher: WebhookDispatcher, stop: threading.Event, interval_s: float = 2.0
) -> None:
    """The server's delivery loop: a run, then a pause of ``interval_s``, until ``stop``; every
    ``policy.prune_every`` it also prunes the outbox (:meth:`WebhookDispatcher.prune`).

    A run's database work and sends happen in a thread, so the event loop keeps answering
    requests. A failed run (database unreachable, webhook key unusable) is logged and tried
    again at the next tick; it never stops the server."""
    pruned_at: datetime | None = None
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(dispatcher.run_once, stop)
            now = dispatcher.now()
            if pruned_at is None or now - pruned_at >= dispatcher.policy.prune_every:
                await asyncio.to_thread(dispatcher.prune)
                pruned_at = now
        except (SQLAlchemyError, WebhookKeyError, OSError) as exc:
            _log.error("webhook_run_failed", error=type(exc).__name__, detail=str(exc))
        else:
            if report.attempts or report.fanned_out:
                _log.info(
                    "webhook_run",
                    fanned_out=report.fanned_out,
                    delivered=report.count(DELIVERED),
                    retried=report.count(RETRY),
                    dead=report.count(DEAD),
                )
        await asyncio.sleep(interval_s)
