"""``/v1/integrations/webhooks``: OEM staff with ``integrations:admin`` manage subscriptions.

Every change is audited (``webhook_subscribed``, ``webhook_disabled``,
``webhook_secret_rotated``, ``webhook_redelivered``) without the secret, which the answer
carries once. Subscription URLs are vetted with the dispatcher's destination policy, the one
deliveries are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from forecourt.cloud.audit import record_change, staff_actor
from forecourt.cloud.auth import Scope, StaffCaller, require_scope
from forecourt.cloud.context import get_context
from forecourt.cloud.integrations.delivery import WebhookDispatcher
from forecourt.cloud.integrations.sealing import SecretSealer
from forecourt.cloud.integrations.subscriptions import (
    create_subscription,
    disable_subscription,
    list_deliveries,
    list_subscriptions,
    redeliver,
    rotate_secret,
    subscription_json,
)


@dataclass
class Integrations:
    """What the routes and the delivery loop share: the secret sealer and the dispatcher."""

    sealer: SecretSealer
    dispatcher: WebhookDispatcher


def get_integrations(request: Request) -> Integrations:
    integrations: Integrations = request.app.state.integrations
    return integrations


class SubscriptionIn(BaseModel):
    url: str = Field(min_length=8, max_length=2048)
    event_types: list[str] = Field(min_length=1, max_length=16)
    description: str = Field(default="", max_length=200)


class RotationIn(BaseModel):
    grace_hours: int = Field(default=24, ge=0, le=168)


_ADMIN = require_scope(Scope.INTEGRATIONS_ADMIN)


def integrations_router() -> APIRouter:
    router = APIRouter(prefix="/v1/integrations/webhooks", tags=["integrations"])

    @router.post("", status_code=201)
    def subscribe(
        body: SubscriptionIn, request: Request, caller: StaffCaller = _ADMIN
    ) -> dict[str, Any]:
        """Register an endpoint; the answer's ``secret`` is shown this once."""
        context, integrations = get_context(request), get_integrations(request)
        now = context.config.clock()
        with context.db.transaction() as session:
            row, secret = create_subscription(
                session,
                integrations.sealer,
                url=body.url,
                event_types=body.event_types,
                description=body.description,
                actor=caller.subject,
                now=now,
                destinations=integrations.dispatcher.destinations,
            )
            record_change(
                session,
                at=now,
                actor=staff_actor(caller.subject),
                action="webhook_subscribed",
                subject=row.subscription_id,
                detail={"url": row.url, "event_types": row.event_types},
            )
            answer = subscription_json(row)
        return answer | {"secret": secret.secret}

    @router.get("", dependencies=[_ADMIN])
    def subscriptions(request: Request) -> list[dict[str, Any]]:
        """Every subscription with its deliveries counted by status (``dead`` included)."""
        with get_context(request).db.sessions() as session:
            return list_subscriptions(session)

    @router.get("/{subscription_id}/deliveries", dependencies=[_ADMIN])
    def deliveries(
        subscription_id: str, request: Request, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The subscription's newest deliveries; ``?status=dead`` lists its dead letters."""
        with get_context(request).db.sessions() as session:
            return list_deliveries(session, subscription_id, status)

    @router.post("/{subscription_id}/deliveries/{delivery_id}/redeliver")
    def redeliver_dead_letter(
        subscription_id: str, delivery_id: int, request: Request, caller: StaffCaller = _ADMIN
    ) -> dict[str, Any]:
        """Send a dead-lettered delivery again (same ``webhook-id``, fresh attempt count)."""
        context = get_context(request)
        now = context.config.clock()
        with context.db.transaction() as session:
            answer = redeliver(session, subscription_id, delivery_id, now)
            record_change(
                session,
                at=now,
                actor=staff_actor(caller.subject),
                action="webhook_redelivered",
                subject=subscription_id,
                detail={
                    "delivery_id": delivery_id,
                    "webhook_id": answer["webhook_id"],
                    "previous_attempts": answer["previous_attempts"],
                },
            )
        return answer

    @router.post("/{subscription_id}/disable")
    def disable(
        subscription_id: str, request: Request, caller: StaffCaller = _ADMIN
    ) -> dict[str, Any]:
        context = get_context(request)
        now = context.config.clock()
        with context.db.transaction() as session:
            row = disable_subscription(session, subscription_id, now)
            record_change(
                session,
                at=now,
                actor=staff_actor(caller.subject),
                action="webhook_disabled",
                subject=subscription_id,
            )
            return subscription_json(row)

    @router.post("/{subscription_id}/secret-rotation")
    def rotate(
        subscription_id: str,
        body: RotationIn,
        request: Request,
        caller: StaffCaller = _ADMIN,
    ) -> dict[str, Any]:
        """A new secret (shown once); the previous one keeps signing for ``grace_hours``."""
        context, integrations = get_context(request), get_integrations(request)
        now = context.config.clock()
        with context.db.transaction() as session:
            secret = rotate_secret(
                session,
                integrations.sealer,
                subscription_id,
                grace=timedelta(hours=body.grace_hours),
                now=now,
            )
            record_change(
                session,
                at=now,
                actor=staff_actor(caller.subject),
                action="webhook_secret_rotated",
                subject=subscription_id,
                detail={"grace_hours": body.grace_hours},
            )
        until = secret.previous_valid_until
        return {
            "id": subscription_id,
            "secret": secret.secret,
            "previous_valid_until": until.isoformat() if until else None,
        }

    return router
