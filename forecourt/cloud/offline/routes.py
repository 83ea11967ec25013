"""``/v1/offline-packages``: dealers fetch ahead and report uses; staff see double uses."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from forecourt.cloud.activations.delivery import bundle_images
from forecourt.cloud.auth import DealerDep, Scope, require_scope
from forecourt.cloud.context import CloudContext, get_context
from forecourt.cloud.offline.service import OfflineService, UseReport
from forecourt.cloud.registry.vehicles import load_vehicle


class IssueIn(BaseModel):
    vins: list[str] | None = Field(default=None, max_length=1000)


class UseIn(BaseModel):
    use_id: str = Field(min_length=4, max_length=64)
    used_at: datetime
    operator_id: str = Field(min_length=1, max_length=64)


def offline_router() -> APIRouter:
    router = APIRouter(prefix="/v1/offline-packages", tags=["offline"])

    @router.post("", status_code=201)
    async def issue(body: IssueIn, dealer: DealerDep, request: Request) -> dict[str, Any]:
        context = get_context(request)
        issued = await run_in_threadpool(OfflineService(context).issue, dealer.dealer_id, body.vins)
        return await run_in_threadpool(_with_delivery, context, issued)

    @router.post("/{package_id}/uses")
    async def use(
        package_id: str, body: UseIn, dealer: DealerDep, request: Request
    ) -> dict[str, Any]:
        service = OfflineService(get_context(request))
        report = UseReport(body.use_id, body.used_at, body.operator_id)
        return await run_in_threadpool(service.record_use, dealer.dealer_id, package_id, report)

    @router.get("/double-uses", dependencies=[require_scope(Scope.READ)])
    def double_uses(request: Request) -> list[dict[str, Any]]:
        return OfflineService(get_context(request)).double_uses()

    return router


def _with_delivery(context: CloudContext, issued: dict[str, Any]) -> dict[str, Any]:
    """Each package's window start and the images its bundle names (what the edge caches)."""
    items = []
    for item in issued["issued"]:
        with context.db.sessions() as session:
            vehicle = load_vehicle(session, item["vin"])
        roles = {e.serial: e.role for e in vehicle.ecus}
        not_after = datetime.fromisoformat(item["not_after"])
        items.append(
            item
            | {
                "not_before": (not_after - context.config.offline_validity).isoformat(),
                "packages": bundle_images(base64.b64decode(item["bundle"]), roles),
            }
        )
    return issued | {"issued": items}
