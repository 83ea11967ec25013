"""``/v1/features``, ``/v1/entitlements``: OEM staff publish; dealers record purchases."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from forecourt.cloud.audit import edge_actor, record_change
from forecourt.cloud.auth import DealerDep, Scope, require_scope
from forecourt.cloud.catalog.service import (
    PurchaseOrder,
    change_state,
    entitlements_of,
    purchase,
    put_feature,
    renew,
)
from forecourt.cloud.context import get_context
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import OperatorClaim, purchase_problem
from forecourt.cloud.registry.vehicles import vehicle_row
from forecourt.core import CoreError, Feature, from_dict, to_json
from forecourt.logging import get_logger

_log = get_logger("cloud.catalog")


class OperatorIn(BaseModel):
    operator_id: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=32)


class PurchaseIn(BaseModel):
    vin: str = Field(min_length=17, max_length=17)
    operator: OperatorIn
    feature_code: str
    reference: str = Field(min_length=4, max_length=100)
    trial: bool = False


class ChangeIn(BaseModel):
    action: Literal["suspend", "resume", "revoke"]


class RenewIn(BaseModel):
    days: int = Field(gt=0, le=3660)


def catalog_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["catalog"])

    @router.put("/features/{code}", dependencies=[require_scope(Scope.CATALOG_WRITE)])
    def publish_feature(code: str, body: dict[str, Any], request: Request) -> Any:
        try:
            feature = from_dict(Feature, {**body, "code": code})
        except (CoreError, TypeError, ValueError) as exc:
            raise CloudProblem(
                422, ProblemCode.VALIDATION_FAILED, "Feature invalid", str(exc)
            ) from exc
        context = get_context(request)
        with context.db.transaction() as session:
            put_feature(session, feature)
        context.catalog.invalidate()
        return to_json(feature)

    @router.get("/features")
    def list_features(dealer: DealerDep, request: Request) -> Any:
        with get_context(request).db.sessions() as session:
            return [to_json(f) for f in get_context(request).catalog.get(session).features]

    @router.post("/entitlements/purchases", status_code=201)
    def dealer_purchase(body: PurchaseIn, dealer: DealerDep, request: Request) -> dict[str, Any]:
        """A purchase made at the dealer: active at once (the car is this dealer's).

        The operator is re-checked like an activation's, against the calling edge's operators:
        a service manager or dealer admin whose role OEM staff confirmed."""
        context = get_context(request)
        now = context.config.clock()
        claim = OperatorClaim(body.operator.operator_id, body.operator.role)
        with context.db.transaction() as session:
            problem = purchase_problem(session, dealer.dealer_id, dealer.edge_id, claim)
            if problem is not None:
                _log.warning(
                    "purchase_refused",
                    dealer_id=dealer.dealer_id,
                    edge=dealer.edge_id,
                    reason=problem,
                )
                raise CloudProblem(
                    403,
                    ProblemCode.OPERATOR_NOT_PERMITTED,
                    "Operator may not purchase",
                    f"{problem}: a purchase needs a confirmed service_manager or dealer_admin"
                    f" registered by {dealer.edge_id}",
                )
            car = vehicle_row(session, body.vin.upper())
            if car.dealer_id != dealer.dealer_id:
                raise CloudProblem(
                    403,
                    ProblemCode.VEHICLE_UNKNOWN,
                    "Vehicle not at this dealer",
                    f"{body.vin} is not assigned to {dealer.dealer_id}",
                )
            order = PurchaseOrder(
                body.vin.upper(), body.feature_code, body.reference, dealer.dealer_id, body.trial
            )
            entitlement_id = purchase(session, context.catalog.get(session), order, now)
            record_change(
                session,
                at=now,
                actor=edge_actor(dealer.certificate_serial),
                action="entitlement_trial" if body.trial else "entitlement_purchased",
                subject=str(entitlement_id),
                dealer_id=dealer.dealer_id,
                edge=dealer.edge_id,
                detail={
                    "vin": order.vin,
                    "feature": order.feature_code,
                    "reference": order.reference,
                    "operator_id": claim.operator_id,
                    "role": claim.role,
                },
            )
        return {"entitlement_id": entitlement_id, "state": "active"}

    @router.get("/vehicles/{vin}/entitlements", dependencies=[require_scope(Scope.READ)])
    def list_entitlements(vin: str, request: Request) -> Any:
        with get_context(request).db.sessions() as session:
            return [{"id": i, **to_json(e)} for i, e in entitlements_of(session, vin.upper())]  # type: ignore[dict-item]

    @router.post(
        "/entitlements/{entitlement_id}/state", dependencies=[require_scope(Scope.CATALOG_WRITE)]
    )
    def set_state(entitlement_id: int, body: ChangeIn, request: Request) -> Any:
        context = get_context(request)
        with context.db.transaction() as session:
            return to_json(
                change_state(session, entitlement_id, body.action, context.config.clock())
            )

    @router.post(
        "/entitlements/{entitlement_id}/renewal", dependencies=[require_scope(Scope.CATALOG_WRITE)]
    )
    def renew_entitlement(entitlement_id: int, body: RenewIn, request: Request) -> Any:
        context = get_context(request)
        with context.db.transaction() as session:
            return to_json(renew(session, entitlement_id, body.days, context.config.clock()))

    return router
