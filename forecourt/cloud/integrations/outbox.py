"""The transactional outbox: an integration event is a row written with the change it reports.

Why an outbox rather than sending from the request: the event and the change commit or roll back
together (no webhook for an activation that did not happen, no lost one for one that did), and
the request that caused it never waits on a partner's endpoint. :func:`enqueue_event` adds one
row to the caller's session and does nothing else (no query, no flush), so the hot paths that
call it (an edge's activation report) pay one INSERT at commit. The delivery worker
(:mod:`forecourt.cloud.integrations.delivery`) turns each event into one delivery per interested
subscription.

Payloads carry what the partners' purpose needs: VIN, feature codes, times, the dealer and the
registry's references; never a person's name or contact (the owner only as the registry's
``owner_ref`` should an event type ever need one).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from forecourt.store.registry import OutboxEventRow


class EventType(StrEnum):
    """The event types a subscription can ask for. Add a member to publish a new type."""

    ACTIVATION_APPLIED = "activation.applied"
    ENTITLEMENT_GRANTED = "entitlement.granted"
    ENTITLEMENT_REVOKED = "entitlement.revoked"


_TYPE_SYNTAX = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


def new_event_id() -> str:
    """A ``webhook-id``: ``msg_`` and 96 random bits, unique per event, stable across retries."""
    return "msg_" + secrets.token_hex(12)


def enqueue_event(
    session: Session,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    at: datetime | None = None,
) -> str:
    """Record an event in ``session``'s transaction; returns its ``webhook-id``.

    Raises ``ValueError`` for a type not in :class:`EventType` (a typo would otherwise reach
    no subscriber, silently)."""
    if not _TYPE_SYNTAX.match(event_type) or event_type not in set(EventType):
        raise ValueError(f"unknown integration event type {event_type!r}")
    event_id = new_event_id()
    session.add(
        OutboxEventRow(
            event_id=event_id,
            event_type=event_type,
            payload=dict(payload),
            occurred_at=at or datetime.now(UTC),
        )
    )
    return event_id


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def activation_applied(
    *,
    request_id: str,
    vin: str,
    dealer_id: str,
    features: Iterable[str],
    at: datetime,
) -> dict[str, Any]:
    """The car confirmed it applied an activation (the owner app shows the features)."""
    return {
        "request_id": request_id,
        "vin": vin,
        "dealer_id": dealer_id,
        "features": sorted(features),
        "applied_at": _iso(at),
    }


def entitlement_changed(
    *,
    entitlement_id: int,
    vin: str,
    feature_code: str,
    source: str,
    issuer: str,
    valid_from: datetime,
    valid_until: datetime | None,
    state: str,
    at: datetime,
) -> dict[str, Any]:
    """An entitlement granted or revoked (the CRM and digital key follow what a car may use)."""
    return {
        "entitlement_id": entitlement_id,
        "vin": vin,
        "feature_code": feature_code,
        "source": source,
        "issuer": issuer,
        "valid_from": _iso(valid_from),
        "valid_until": _iso(valid_until),
        "state": state,
        "changed_at": _iso(at),
    }
