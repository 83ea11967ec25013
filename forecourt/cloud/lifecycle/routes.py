"""``/v1/vehicles/{vin}/lifecycle``, ``.../service-visits``, ``.../history``.

OEM staff (scope ``registry:write``) record what happens to a car after the dealer; anyone with
a read token (a used-car portal, an insurer's integration) gets the car's provable history.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from forecourt.cloud.audit import staff_actor
from forecourt.cloud.auth import Scope, StaffCaller, require_scope
from forecourt.cloud.context import get_context
from forecourt.cloud.dossier.queries import parse_vin
from forecourt.cloud.lifecycle.history import history_document
from forecourt.cloud.lifecycle.service import LifecycleService
from forecourt.cloud.registry.vehicles import vehicle_row
from forecourt.core import LifecycleState
from forecourt.ledger.log import TransparencyLog

#: An owner reference is an opaque CRM key, as long as the registry column.
OWNER_REF = Field(default=None, min_length=1, max_length=64)


class LifecycleIn(BaseModel):
    to: LifecycleState
    owner_ref: str | None = OWNER_REF
    dealer_id: str | None = Field(default=None, min_length=1, max_length=32)


class ServiceVisitIn(BaseModel):
    dealer_id: str = Field(min_length=1, max_length=32)


def lifecycle_service(log: TransparencyLog) -> LifecycleService:
    """The service over the cloud log's own store (one store per log: its subtree cache)."""
    return LifecycleService(log.store, log.origin, log.clock)


def lifecycle_router(log: TransparencyLog) -> APIRouter:
    router = APIRouter(prefix="/v1/vehicles", tags=["lifecycle"])
    service = lifecycle_service(log)

    @router.post("/{vin}/lifecycle")
    def change(
        vin: str,
        body: LifecycleIn,
        request: Request,
        staff: StaffCaller = require_scope(Scope.REGISTRY_WRITE),
    ) -> dict[str, Any]:
        """Move the car along one lifecycle edge: ``delivered`` (handover, names the first
        owner), ``in_service``, ``transferred`` (change of owner; the previous owner's
        subscriptions end), ``scrapped``, or any other edge the domain allows."""
        with get_context(request).db.transaction() as session:
            result = service.transition(
                session,
                str(parse_vin(vin)),
                body.to,
                actor=staff_actor(staff.subject),
                owner_ref=body.owner_ref,
                dealer_id=body.dealer_id,
            )
        return result.to_json()

    @router.post("/{vin}/service-visits", status_code=201)
    def service_visit(
        vin: str,
        body: ServiceVisitIn,
        request: Request,
        staff: StaffCaller = require_scope(Scope.REGISTRY_WRITE),
    ) -> dict[str, Any]:
        """A workshop visit at ``dealer_id``, recorded in the car's history."""
        with get_context(request).db.transaction() as session:
            result = service.service_visit(
                session, str(parse_vin(vin)), body.dealer_id, actor=staff_actor(staff.subject)
            )
        return result.to_json()

    @router.get("/{vin}/history", dependencies=[require_scope(Scope.READ)])
    def history(vin: str, request: Request) -> dict[str, Any]:
        """The car's lifecycle records, each with an inclusion proof against one signed
        checkpoint of the cloud's log, verifiable offline with the log's published key."""
        wanted = str(parse_vin(vin))
        with get_context(request).db.sessions() as session:
            vehicle_row(session, wanted)
            return history_document(log, session, wanted)

    return router
