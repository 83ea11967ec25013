"""``/v1/sync``: a dealer's edge pushes its outbox (mTLS); staff read a car's synced record."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from forecourt.cloud.auth import DealerDep, Scope, require_scope
from forecourt.cloud.context import get_context
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.sync.events import MAX_BATCH
from forecourt.cloud.sync.service import SyncService, consent_records, software_history

#: CloudEvents 1.0 HTTP binding, batched content mode.
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"


def sync_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["sync"])

    @router.post("/sync/events")
    async def push_events(request: Request, dealer: DealerDep) -> dict[str, Any]:
        """A batch of CloudEvents (a JSON array, ``application/cloudevents-batch+json``).

        Answers 200 with the ids ``accepted`` now, the ``duplicates`` already held (a retried
        batch is accepted again without a second record) and the ``rejected`` ones with a code;
        ``double_uses`` lists offline packages the cloud has seen used twice."""
        events = _batch(await request.body())
        service = SyncService(get_context(request))
        result = await run_in_threadpool(service.accept, dealer, events)
        return result.to_json()

    @router.get("/vehicles/{vin}/software-history", dependencies=[require_scope(Scope.READ)])
    def history(vin: str, request: Request) -> list[dict[str, Any]]:
        """UNECE R156: every ECU's software before and after each change of the car."""
        with get_context(request).db.sessions() as session:
            return software_history(session, vin.upper())

    @router.get("/vehicles/{vin}/consent-records", dependencies=[require_scope(Scope.READ)])
    def consents(vin: str, request: Request) -> list[dict[str, Any]]:
        """The car's consent rows (append-only) with their propagation per system."""
        with get_context(request).db.sessions() as session:
            return consent_records(session, vin.upper())

    return router


def _batch(body: bytes) -> list[dict[str, Any]]:
    try:
        events = json.loads(body)
    except ValueError as exc:
        raise CloudProblem(
            400, ProblemCode.VALIDATION_FAILED, "Batch is not JSON", str(exc)[:200]
        ) from exc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise CloudProblem(
            422, ProblemCode.VALIDATION_FAILED, "Batch invalid", "a JSON array of CloudEvents"
        )
    if len(events) > MAX_BATCH:
        raise CloudProblem(
            413,
            ProblemCode.VALIDATION_FAILED,
            "Batch too large",
            f"{len(events)} events; at most {MAX_BATCH} per batch",
        )
    return events
