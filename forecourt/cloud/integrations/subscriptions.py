"""Webhook subscriptions: register, list, disable, rotate the signing secret; dead letters.

A subscription's URL is ``https`` on port 443 or 8443 (the body carries VINs and the signature
only proves origin, not confidentiality), and its host must resolve only to globally routable
addresses (:mod:`forecourt.cloud.integrations.destinations`). Where the deployment allows
loopback (development, tests), a same-host receiver may use any port and plain ``http``. The
URL may not carry credentials or a fragment. The secret is
returned once, by :func:`create_subscription` and :func:`rotate_secret`, and otherwise exists
only sealed (:mod:`forecourt.cloud.integrations.sealing`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from forecourt.cloud.integrations.destinations import (
    HTTPS_PORTS,
    DestinationNotAllowed,
    DestinationPolicy,
    DestinationUnresolvable,
    all_loopback,
)
from forecourt.cloud.integrations.outbox import EventType
from forecourt.cloud.integrations.sealing import SecretSealer, new_secret
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.logging import get_logger
from forecourt.store.registry import (
    OutboxEventRow,
    WebhookDeliveryRow,
    WebhookSecretRow,
    WebhookSubscriptionRow,
)

PENDING, DELIVERED, DEAD, CANCELLED = "pending", "delivered", "dead", "cancelled"
DELIVERY_STATUSES = (PENDING, DELIVERED, DEAD, CANCELLED)
MAX_GRACE = timedelta(days=7)
_log = get_logger("cloud.integrations.subscriptions")


def _invalid(detail: str) -> CloudProblem:
    return CloudProblem(422, ProblemCode.VALIDATION_FAILED, "Webhook subscription invalid", detail)


def check_url(url: str, destinations: DestinationPolicy) -> str:
    """``url`` if a subscription may use it, else a ``validation_failed`` problem (logged).

    The host is resolved here with ``destinations`` and again at each delivery: passing now
    says nothing about later answers, it refuses what is wrong from the start."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise _invalid(f"the URL does not parse: {exc}") from exc
    host = parts.hostname or ""
    if not host:
        raise _invalid("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise _invalid("the URL may not carry credentials; the signature authenticates")
    if parts.fragment:
        raise _invalid("the URL may not carry a fragment")
    if parts.scheme not in ("https", "http"):
        raise _invalid("the URL must be https")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = destinations.vet(host, port)
    except DestinationNotAllowed as exc:
        _log.warning(
            "webhook_destination_refused", host=host, address=exc.address, reason=exc.reason
        )
        raise _invalid(
            f"the URL's host {host} is or resolves to a {exc.reason} address; webhooks go only "
            "to globally routable addresses"
        ) from exc
    except DestinationUnresolvable as exc:
        _log.warning("webhook_destination_refused", host=host, reason="unresolvable")
        raise _invalid(f"the URL's host {host} does not resolve") from exc
    if all_loopback(addresses):
        return url  # only reachable when the deployment allows loopback: any port, http too
    if parts.scheme != "https":
        raise _invalid("the URL must be https (plain http only to an allowed loopback receiver)")
    if port not in HTTPS_PORTS:
        _log.warning("webhook_destination_refused", host=host, port=port, reason="port")
        raise _invalid(
            f"the URL's port {port} is not allowed; use "
            f"{' or '.join(str(p) for p in sorted(HTTPS_PORTS))}"
        )
    return url


def check_event_types(event_types: Iterable[str]) -> list[str]:
    wanted = sorted(set(event_types))
    known = {t.value for t in EventType}
    unknown = [t for t in wanted if t not in known]
    if not wanted:
        raise _invalid("name at least one event type")
    if unknown:
        raise _invalid(f"unknown event types: {', '.join(unknown)}; known: {sorted(known)}")
    return wanted


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A secret as handed out once, and until when the previous ones still sign."""

    subscription_id: str
    secret: str
    previous_valid_until: datetime | None


def create_subscription(
    session: Session,
    sealer: SecretSealer,
    *,
    url: str,
    event_types: Sequence[str],
    description: str,
    actor: str,
    now: datetime,
    destinations: DestinationPolicy,
) -> tuple[WebhookSubscriptionRow, NewSecret]:
    """A new enabled subscription and its first secret; ``url`` is vetted with
    ``destinations`` (:func:`check_url`)."""
    row = WebhookSubscriptionRow(
        subscription_id="sub_" + secrets.token_hex(8),
        url=check_url(url, destinations),
        event_types=check_event_types(event_types),
        description=description,
        enabled=True,
        created_by=actor,
        created_at=now,
        disabled_at=None,
    )
    session.add(row)
    session.flush()  # the secret row refers to it
    secret = new_secret()
    session.add(
        WebhookSecretRow(
            subscription_id=row.subscription_id,
            sealed=sealer.seal(row.subscription_id, secret),
            created_at=now,
            expires_at=None,
        )
    )
    session.flush()
    return row, NewSecret(row.subscription_id, secret, None)


def get_subscription(session: Session, subscription_id: str) -> WebhookSubscriptionRow:
    row = session.get(WebhookSubscriptionRow, subscription_id)
    if row is None:
        raise CloudProblem(
            404,
            ProblemCode.NOT_FOUND,
            "Webhook subscription unknown",
            f"no webhook subscription {subscription_id}",
        )
    return row


def disable_subscription(
    session: Session, subscription_id: str, now: datetime
) -> WebhookSubscriptionRow:
    """Stop a subscription: nothing new is made for it and its pending deliveries are cancelled.

    A delivery already in flight finishes; none is started after this commits."""
    row = get_subscription(session, subscription_id)
    if row.enabled:
        row.enabled, row.disabled_at = False, now
        session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.subscription_id == subscription_id,
                WebhookDeliveryRow.status == PENDING,
            )
            .values(status=CANCELLED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return row


def rotate_secret(
    session: Session,
    sealer: SecretSealer,
    subscription_id: str,
    *,
    grace: timedelta,
    now: datetime,
) -> NewSecret:
    """A new secret; the current ones keep signing until ``now + grace`` (both are sent)."""
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise _invalid(f"the grace period is between 0 and {MAX_GRACE.days} days")
    row = get_subscription(session, subscription_id)
    until = now + grace
    session.execute(
        update(WebhookSecretRow)
        .where(
            WebhookSecretRow.subscription_id == row.subscription_id,
            or_(WebhookSecretRow.expires_at.is_(None), WebhookSecretRow.expires_at > until),
        )
        .values(expires_at=until)
        .execution_options(synchronize_session=False)
    )
    secret = new_secret()
    session.add(
        WebhookSecretRow(
            subscription_id=row.subscription_id,
            sealed=sealer.seal(row.subscription_id, secret),
            created_at=now,
            expires_at=None,
        )
    )
    return NewSecret(row.subscription_id, secret, until)


def signing_secrets(
    session: Session, sealer: SecretSealer, subscription_id: str, now: datetime
) -> list[str]:
    """Every secret of the subscription still valid at ``now``, newest first."""
    rows = session.scalars(
        select(WebhookSecretRow.sealed)
        .where(
            WebhookSecretRow.subscription_id == subscription_id,
            or_(WebhookSecretRow.expires_at.is_(None), WebhookSecretRow.expires_at > now),
        )
        .order_by(WebhookSecretRow.id.desc())
    )
    return [sealer.open(subscription_id, sealed) for sealed in rows]


def subscription_json(
    row: WebhookSubscriptionRow, counts: dict[str, int] | None = None
) -> dict[str, Any]:
    return {
        "id": row.subscription_id,
        "url": row.url,
        "event_types": list(row.event_types),
        "description": row.description,
        "enabled": row.enabled,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "disabled_at": row.disabled_at.isoformat() if row.disabled_at else None,
        "deliveries": {status: (counts or {}).get(status, 0) for status in DELIVERY_STATUSES},
    }


def list_subscriptions(session: Session) -> list[dict[str, Any]]:
    """Every subscription with its deliveries counted by status (dead letters among them)."""
    counts: dict[str, dict[str, int]] = {}
    for subscription_id, status, count in session.execute(
        select(
            WebhookDeliveryRow.subscription_id, WebhookDeliveryRow.status, func.count()
        ).group_by(WebhookDeliveryRow.subscription_id, WebhookDeliveryRow.status)
    ):
        counts.setdefault(subscription_id, {})[status] = count
    rows = session.scalars(
        select(WebhookSubscriptionRow).order_by(WebhookSubscriptionRow.created_at)
    )
    return [subscription_json(r, counts.get(r.subscription_id)) for r in rows]


def list_deliveries(
    session: Session, subscription_id: str, status: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    """A subscription's deliveries, newest first; ``status="dead"`` lists its dead letters."""
    get_subscription(session, subscription_id)
    if status is not None and status not in DELIVERY_STATUSES:
        raise _invalid(f"status is one of {', '.join(DELIVERY_STATUSES)}")
    query = (
        select(WebhookDeliveryRow, OutboxEventRow)
        .join_from(
            WebhookDeliveryRow,
            OutboxEventRow,
            OutboxEventRow.seq == WebhookDeliveryRow.event_seq,
        )
        .where(WebhookDeliveryRow.subscription_id == subscription_id)
        .order_by(WebhookDeliveryRow.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(WebhookDeliveryRow.status == status)
    return [
        {
            "id": delivery.id,
            "webhook_id": event.event_id,
            "event_type": event.event_type,
            "occurred_at": event.occurred_at.isoformat(),
            "status": delivery.status,
            "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at.isoformat(),
            "last_status": delivery.last_status,
            "last_error": delivery.last_error,
            "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        }
        for delivery, event in session.execute(query)
    ]


def redeliver(
    session: Session, subscription_id: str, delivery_id: int, now: datetime
) -> dict[str, Any]:
    """Put a dead-lettered delivery back as due now with a fresh attempt count.

    The event, and so the ``webhook-id``, stay the same: a receiver that did get an earlier
    attempt deduplicates it. Only a ``dead`` delivery of an enabled subscription qualifies; the
    status is checked in the ``UPDATE`` itself, so two staff redelivering at once (or a worker
    recording at the same time) cannot both win."""
    subscription = get_subscription(session, subscription_id)
    delivery = session.get(WebhookDeliveryRow, delivery_id)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise CloudProblem(
            404,
            ProblemCode.NOT_FOUND,
            "Webhook delivery unknown",
            f"no delivery {delivery_id} of webhook subscription {subscription_id}",
        )
    if not subscription.enabled:
        raise CloudProblem(
            409,
            ProblemCode.VALIDATION_FAILED,
            "Webhook subscription disabled",
            f"webhook subscription {subscription_id} is disabled; nothing is sent to it",
        )
    previous = delivery.attempts
    changed = session.execute(
        update(WebhookDeliveryRow)
        .where(WebhookDeliveryRow.id == delivery_id, WebhookDeliveryRow.status == DEAD)
        .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        .returning(WebhookDeliveryRow.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if changed is None:
        session.refresh(delivery)
        raise CloudProblem(
            409,
            ProblemCode.VALIDATION_FAILED,
            "Webhook delivery not dead-lettered",
            f"delivery {delivery_id} is {delivery.status}; only a dead letter is redelivered",
        )
    event = session.get(OutboxEventRow, delivery.event_seq)
    assert event is not None  # foreign key
    return {
        "id": delivery_id,
        "webhook_id": event.event_id,
        "status": PENDING,
        "previous_attempts": previous,
        "next_attempt_at": now.isoformat(),
    }
