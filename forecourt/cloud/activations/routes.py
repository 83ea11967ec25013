"""``/v1/activations``: dealer edges ask (mTLS) and report the car's answer."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from forecourt.cloud.activations.checks import ReadEcu
from forecourt.cloud.activations.delivery import bundle_images
from forecourt.cloud.activations.service import ActivationRequest, ActivationService
from forecourt.cloud.auth import DealerDep
from forecourt.cloud.context import get_context
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import OperatorClaim
from forecourt.core import ConsentRecord, CoreError, EcuRole, from_dict


class OperatorIn(BaseModel):
    operator_id: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=32)


class EcuIn(BaseModel):
    role: str = Field(max_length=16)
    serial: str = Field(max_length=64)
    hardware_number: str = Field(max_length=64)
    software_version: str = Field(default="", max_length=64)


class ActivationIn(BaseModel):
    request_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    vin: str = Field(min_length=17, max_length=17)
    operator: OperatorIn
    features: list[str] = Field(max_length=64)
    inventory: list[EcuIn] = Field(max_length=64)
    nonce: str = Field(min_length=8, max_length=128)
    consent: dict[str, Any] | None = None


class ReportIn(BaseModel):
    outcome: Literal["applied", "failed"]


_ROLES = frozenset(r.value for r in EcuRole)


def activation_router() -> APIRouter:
    router = APIRouter(prefix="/v1/activations", tags=["activations"])

    @router.post("", status_code=201)
    async def authorise(body: ActivationIn, dealer: DealerDep, request: Request) -> JSONResponse:
        try:
            consent = from_dict(ConsentRecord, body.consent) if body.consent else None
        except (CoreError, TypeError, ValueError) as exc:
            raise CloudProblem(
                422, ProblemCode.VALIDATION_FAILED, "Consent record invalid", str(exc)
            ) from exc
        ask = ActivationRequest(
            request_id=body.request_id,
            vin=body.vin.upper(),
            operator=OperatorClaim(body.operator.operator_id, body.operator.role),
            features=tuple(body.features),
            inventory=tuple(ReadEcu(**e.model_dump()) for e in body.inventory),
            nonce=body.nonce,
            consent=consent,
        )
        service = ActivationService(get_context(request))
        issued = await run_in_threadpool(service.authorise, ask, dealer.dealer_id, dealer.edge_id)
        roles = {e.serial: EcuRole(e.role) for e in body.inventory if e.role in _ROLES}
        answer = issued.to_json() | {"packages": bundle_images(issued.bundle, roles)}
        return JSONResponse(answer, status_code=200 if issued.replayed else 201)

    @router.post("/{request_id}/report")
    async def report(
        request_id: str, body: ReportIn, dealer: DealerDep, request: Request
    ) -> dict[str, str]:
        service = ActivationService(get_context(request))
        status = await run_in_threadpool(
            service.report, request_id, dealer.dealer_id, body.outcome == "applied"
        )
        return {"request_id": request_id, "status": status}

    return router
