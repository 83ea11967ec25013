"""``/v1/compliance-profiles``: publish a new version; read the one in force."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from forecourt.cloud.auth import DealerDep, Scope, require_scope
from forecourt.cloud.compliance.service import current_profile, profile_for_dealer, publish_profile
from forecourt.cloud.context import get_context
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import get_dealer
from forecourt.core import ComplianceProfile, CoreError, Market, from_dict, to_json


def compliance_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["compliance"])

    @router.post(
        "/compliance-profiles",
        status_code=201,
        dependencies=[require_scope(Scope.COMPLIANCE_WRITE)],
    )
    def publish(body: dict[str, Any], request: Request) -> dict[str, Any]:
        try:
            profile = from_dict(ComplianceProfile, body)
        except (CoreError, TypeError, ValueError) as exc:
            raise CloudProblem(
                422, ProblemCode.VALIDATION_FAILED, "Profile invalid", str(exc)
            ) from exc
        context = get_context(request)
        with context.db.transaction() as session:
            version = publish_profile(session, profile, context.config.clock())
        return {"market": profile.market.value, "version": version}

    @router.get("/compliance-profiles/{market}", dependencies=[require_scope(Scope.READ)])
    def current(market: Market, request: Request) -> dict[str, Any]:
        with get_context(request).db.sessions() as session:
            version, profile = current_profile(session, market)
        return {"version": version, "profile": to_json(profile)}

    @router.get("/dealer/compliance-profile")
    def for_dealer(dealer: DealerDep, request: Request) -> dict[str, Any]:
        """The profile that applies at the calling dealer's location."""
        with get_context(request).db.sessions() as session:
            version, profile = profile_for_dealer(session, get_dealer(session, dealer.dealer_id))
        return {"version": version, "profile": to_json(profile)}

    return router
