"""The JSON API under ``/api/v1``: what the console's scripts, the CLI and integrations call.

Every route that touches dealer data resolves the session (CSRF checked for state changes, see
:mod:`forecourt.edge.app.security`) and then calls a service that runs ``require(...)`` itself,
or calls ``require`` here where the service has no check of its own (reading one workflow,
the ledger, the status). Blocking service calls run in the thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from forecourt.core import DataCategory
from forecourt.edge.app.consent import ConsentAnswers, rule_rows
from forecourt.edge.app.context import Auth, ConsoleContext, Ctx
from forecourt.edge.app.ledger_view import entries_with_proofs, entry_with_proof, latest_checkpoint
from forecourt.edge.app.notices import category_texts
from forecourt.edge.app.presenters import (
    feature_json,
    operator_json,
    operator_names,
    progress_json,
    review_json,
    vehicles_json,
    workflow_json,
)
from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.edge.app.security import clear_session_cookie, set_session_cookie
from forecourt.edge.app.status import overall, self_check
from forecourt.edge.operators import (
    AuthenticationFailed,
    LoginResult,
    Operator,
    Permission,
    Review,
    ReviewState,
    StepUpFailed,
    require,
)
from forecourt.edge.workflow import CarTarget, Progress, WorkflowNotFound, WorkflowRecord
from forecourt.edge.workflow.states import is_terminal
from forecourt.logging import get_logger

_log = get_logger("edge.app.api")
VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str = Field(min_length=1, max_length=16)


class ActivationIn(BaseModel):
    vin: str = Field(pattern=VIN_PATTERN)
    features: list[str] = Field(min_length=1, max_length=64)


class BatchIn(BaseModel):
    vins: list[Annotated[str, Field(pattern=VIN_PATTERN)]] = Field(min_length=2, max_length=200)
    features: list[str] = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=3, max_length=500)


class ApproveIn(BaseModel):
    totp_code: str = Field(min_length=1, max_length=16)
    note: str | None = Field(default=None, max_length=500)


class RejectIn(BaseModel):
    note: str = Field(min_length=1, max_length=500)


class ConsentIn(BaseModel):
    vin: str = Field(pattern=VIN_PATTERN)
    subject_ref: str = Field(default="", max_length=200)
    notice_version: str = Field(min_length=1, max_length=32)
    language: str = Field(min_length=2, max_length=16)
    answers: dict[DataCategory, bool] = Field(default_factory=dict)
    cross_border: bool | None = None
    gpc: bool = False


# -- helpers used by the pages too ----------------------------------------------------------------


def login(
    ctx: ConsoleContext, username: str, password: str, code: str, addr: str | None
) -> LoginResult:
    try:
        return ctx.services.operators.login(
            ctx.services.dealer_id, username, password, code, remote_addr=addr
        )
    except AuthenticationFailed as exc:
        ctx.metrics.login_failures.labels("locked" if exc.reason == "locked" else "login").inc()
        raise


def check_features(ctx: ConsoleContext, features: list[str]) -> list[str]:
    """Refuse codes the catalog does not offer here (when a catalog is configured)."""
    if ctx.services.features:
        unknown = sorted({f for f in features if ctx.services.feature(f) is None})
        if unknown:
            raise ConsoleProblem(
                422,
                ProblemCode.FEATURE_UNKNOWN,
                "Unknown feature",
                f"not offered here: {', '.join(unknown)}",
                features=unknown,
            )
    return sorted(set(features))


def start_activation(ctx: ConsoleContext, operator: Operator, vin: str, features: list[str]) -> str:
    services = ctx.services
    require(operator, Permission.ACTIVATION_START, services.dealer_id)
    car = next((c for c in services.vehicles.discovered() if c.vin == vin), None)
    if car is None:
        raise ConsoleProblem(
            404, ProblemCode.VEHICLE_UNKNOWN, "Car not on the network", f"no car {vin} answers"
        )
    codes = check_features(ctx, features)
    consent = ctx.consent.capture_for_activation(vin, services.clock())
    return services.activations.start(
        operator, features=codes, vin=vin, address=car.address, consent=consent
    )


def readable_workflow(ctx: ConsoleContext, operator: Operator, workflow_id: str) -> WorkflowRecord:
    wf = ctx.services.activations.get(workflow_id)
    require(operator, Permission.VEHICLE_READ, wf.dealer_id)
    return wf


def decide(
    ctx: ConsoleContext, operator: Operator, review_id: str, *, code: str | None, note: str | None
) -> Review:
    """Approve (with step-up) or reject, then let the workflows it holds continue or end."""
    reviews = ctx.services.reviews
    try:
        if code is not None:
            review = reviews.approve(operator, review_id, code, note=note)
        else:
            review = reviews.reject(operator, review_id, note=note or "")
    except StepUpFailed:
        ctx.metrics.login_failures.labels("step_up").inc()
        raise
    payload = review.payload
    ids = [payload.get("workflow_id"), *(payload.get("workflow_ids") or [])]
    for workflow_id in ids:
        if isinstance(workflow_id, str):
            try:
                ctx.services.activations.review_decided(workflow_id)
            except WorkflowNotFound:
                _log.warning("review_names_unknown_workflow", review_id=review.id)
    return review


def list_reviews(
    ctx: ConsoleContext, operator: Operator, state: ReviewState | None
) -> list[dict[str, Any]]:
    reviews = ctx.services.reviews.list_for_dealer(operator, ctx.services.dealer_id, state)
    names = operator_names(
        ctx.services, [r.requester_id for r in reviews] + [r.reviewer_id for r in reviews]
    )
    return [review_json(r, operator, names) for r in reviews]


def consent_view(
    ctx: ConsoleContext, operator: Operator, vin: str, language: str | None
) -> dict[str, Any]:
    require(operator, Permission.CONSENT_RECORD, ctx.services.dealer_id)
    profile = ctx.services.profile
    lang = language if language in profile.languages else profile.languages[0]
    texts, translated = category_texts(lang)
    current = ctx.consent.current(vin)
    categories = []
    for rule in rule_rows(profile):
        stored = current.get(rule.category.value)
        categories.append(
            {
                "category": rule.category.value,
                "title": texts[rule.category].title,
                "purpose": texts[rule.category].purpose,
                "mode": rule.mode.value,
                "default_on": rule.default_on,
                "separate_consent": rule.separate_consent,
                "decision": stored.decision if stored else None,
                "decided_on_notice": stored.notice_version if stored else None,
            }
        )
    cross = current.get("cross_border")
    return {
        "vin": vin,
        "market": profile.market.value,
        "residency": profile.residency.value,
        "notice_version": profile.notice_version,
        "retention_days": profile.retention_days,
        "languages": list(profile.languages),
        "language": lang,
        "translated": translated,
        "cross_border_mode": profile.cross_border_mode.value,
        "cross_border": cross.decision if cross else None,
        "categories": categories,
    }


def record_consent(ctx: ConsoleContext, operator: Operator, answers: ConsentAnswers) -> list[str]:
    require(operator, Permission.CONSENT_RECORD, ctx.services.dealer_id)
    ids = ctx.consent.record(answers, operator.id, ctx.services.clock())
    _log.info(
        "consent_recorded", vin=answers.vin, rows=len(ids), operator_id=operator.id, gpc=answers.gpc
    )
    return ids


def audit_view(ctx: ConsoleContext, operator: Operator, newest: int) -> dict[str, Any]:
    require(operator, Permission.AUDIT_READ, ctx.services.dealer_id)
    checkpoint = latest_checkpoint(ctx.services.ledger)
    return {
        "checkpoint": checkpoint.to_json(),
        "entries": entries_with_proofs(ctx.services.ledger, checkpoint, newest=newest),
    }


def status_view(ctx: ConsoleContext, operator: Operator) -> dict[str, Any]:
    require(operator, Permission.VEHICLE_READ, ctx.services.dealer_id)
    checks = self_check(ctx.services)
    return {
        "dealer_id": ctx.services.dealer_id,
        "edge_id": ctx.services.edge_id,
        "market": ctx.services.profile.market.value,
        "status": overall(checks),
        "checks": [c.to_json() for c in checks],
    }


# -- routes --------------------------------------------------------------------------------------


def create_api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["console"])
    _session_routes(router)
    _activation_routes(router)
    _review_routes(router)
    _consent_ledger_status_routes(router)
    return router


def _session_routes(router: APIRouter) -> None:

    @router.post("/session")
    async def create_session(
        body: LoginIn, request: Request, response: Response, ctx: Ctx
    ) -> dict[str, Any]:
        addr = request.client.host if request.client else None
        result = await run_in_threadpool(
            login, ctx, body.username, body.password, body.totp_code, addr
        )
        set_session_cookie(response, request, ctx.settings, result, ctx.services.clock())
        return {
            "operator": operator_json(result.operator),
            "csrf_token": result.csrf_token,
            "expires_at": result.expires_at.isoformat(),
        }

    @router.delete("/session", status_code=204)
    async def end_session(request: Request, session: Auth, ctx: Ctx) -> Response:
        token = request.cookies.get("fc_session", "")
        await run_in_threadpool(ctx.services.operators.logout, token)
        response = Response(status_code=204)
        clear_session_cookie(response, request, ctx.settings)
        return response

    @router.get("/me")
    async def me(session: Auth) -> dict[str, Any]:
        return {
            "operator": operator_json(session.operator),
            "csrf_token": session.csrf_token,
            "expires_at": session.expires_at.isoformat(),
        }


def _activation_routes(router: APIRouter) -> None:
    @router.get("/features")
    async def features(session: Auth, ctx: Ctx) -> list[dict[str, Any]]:
        require(session.operator, Permission.VEHICLE_READ, ctx.services.dealer_id)
        return [feature_json(f) for f in ctx.services.features]

    @router.get("/vehicles")
    async def vehicles(session: Auth, ctx: Ctx) -> list[dict[str, Any]]:
        workflows = await run_in_threadpool(ctx.services.activations.list, session.operator)
        return await run_in_threadpool(vehicles_json, ctx.services, workflows)

    @router.post("/activations", status_code=202)
    async def activate(body: ActivationIn, session: Auth, ctx: Ctx) -> dict[str, Any]:
        workflow_id = await run_in_threadpool(
            start_activation, ctx, session.operator, body.vin, body.features
        )
        return {"workflow_id": workflow_id}

    @router.post("/activations/batch", status_code=202)
    async def activate_batch(body: BatchIn, session: Auth, ctx: Ctx) -> dict[str, Any]:
        codes = check_features(ctx, body.features)
        on_network = {c.vin: c for c in ctx.services.vehicles.discovered()}
        require(session.operator, Permission.ACTIVATION_BATCH_REQUEST, ctx.services.dealer_id)
        missing = sorted(set(body.vins) - set(on_network))
        if missing:
            raise ConsoleProblem(
                404,
                ProblemCode.VEHICLE_UNKNOWN,
                "Cars not on the network",
                ", ".join(missing),
                vins=missing,
            )
        targets = [CarTarget(v, on_network[v].address) for v in dict.fromkeys(body.vins)]
        ids = await run_in_threadpool(
            lambda: ctx.services.activations.start_batch(
                session.operator, targets=targets, features=codes, reason=body.reason
            )
        )
        return {"workflow_ids": ids}

    @router.get("/activations")
    async def activations(session: Auth, ctx: Ctx) -> list[dict[str, Any]]:
        rows = await run_in_threadpool(ctx.services.activations.list, session.operator)
        return [workflow_json(wf) for wf in rows]

    @router.get("/activations/{workflow_id}")
    async def activation(workflow_id: str, session: Auth, ctx: Ctx) -> dict[str, Any]:
        await run_in_threadpool(readable_workflow, ctx, session.operator, workflow_id)
        progress = await run_in_threadpool(ctx.services.activations.progress, workflow_id)
        return progress_json(progress)

    @router.post("/activations/{workflow_id}/cancel")
    async def cancel(workflow_id: str, session: Auth, ctx: Ctx) -> dict[str, Any]:
        wf = await run_in_threadpool(ctx.services.activations.cancel, session.operator, workflow_id)
        return workflow_json(wf)

    @router.get("/activations/{workflow_id}/events")
    async def events(workflow_id: str, session: Auth, ctx: Ctx) -> StreamingResponse:
        await run_in_threadpool(readable_workflow, ctx, session.operator, workflow_id)
        return StreamingResponse(
            progress_stream(ctx, workflow_id),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )


def _review_routes(router: APIRouter) -> None:
    @router.get("/reviews")
    async def reviews(
        session: Auth, ctx: Ctx, state: ReviewState | None = None
    ) -> list[dict[str, Any]]:
        return await run_in_threadpool(list_reviews, ctx, session.operator, state)

    @router.post("/reviews/{review_id}/approve")
    async def approve(review_id: str, body: ApproveIn, session: Auth, ctx: Ctx) -> dict[str, Any]:
        review = await run_in_threadpool(
            lambda: decide(ctx, session.operator, review_id, code=body.totp_code, note=body.note)
        )
        names = await run_in_threadpool(
            operator_names, ctx.services, [review.requester_id, review.reviewer_id]
        )
        return review_json(review, session.operator, names)

    @router.post("/reviews/{review_id}/reject")
    async def reject(review_id: str, body: RejectIn, session: Auth, ctx: Ctx) -> dict[str, Any]:
        review = await run_in_threadpool(
            lambda: decide(ctx, session.operator, review_id, code=None, note=body.note)
        )
        names = await run_in_threadpool(
            operator_names, ctx.services, [review.requester_id, review.reviewer_id]
        )
        return review_json(review, session.operator, names)


def _consent_ledger_status_routes(router: APIRouter) -> None:
    @router.get("/consent/{vin}")
    async def consent(vin: str, session: Auth, ctx: Ctx, lang: str | None = None) -> dict[str, Any]:
        return await run_in_threadpool(consent_view, ctx, session.operator, vin, lang)

    @router.post("/consent", status_code=201)
    async def capture_consent(
        body: ConsentIn, request: Request, session: Auth, ctx: Ctx
    ) -> dict[str, Any]:
        answers = ConsentAnswers(
            vin=body.vin,
            subject_ref=body.subject_ref,
            notice_version=body.notice_version,
            language=body.language,
            answers=body.answers,
            cross_border=body.cross_border,
            gpc=body.gpc or request.headers.get("sec-gpc") == "1",
        )
        ids = await run_in_threadpool(record_consent, ctx, session.operator, answers)
        view = await run_in_threadpool(consent_view, ctx, session.operator, body.vin, body.language)
        return {"record_ids": ids, **view}

    @router.get("/ledger/checkpoint")
    async def checkpoint(session: Auth, ctx: Ctx) -> dict[str, Any]:
        require(session.operator, Permission.AUDIT_READ, ctx.services.dealer_id)
        view = await run_in_threadpool(latest_checkpoint, ctx.services.ledger)
        return view.to_json()

    @router.get("/ledger/entries")
    async def entries(
        session: Auth, ctx: Ctx, newest: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> dict[str, Any]:
        return await run_in_threadpool(audit_view, ctx, session.operator, newest)

    @router.get("/ledger/entries/{index}")
    async def entry(index: int, session: Auth, ctx: Ctx) -> dict[str, Any]:
        require(session.operator, Permission.AUDIT_READ, ctx.services.dealer_id)
        view = await run_in_threadpool(latest_checkpoint, ctx.services.ledger)
        found = await run_in_threadpool(entry_with_proof, ctx.services.ledger, view, index)
        return {"checkpoint": view.to_json(), **found}

    @router.get("/status")
    async def status(session: Auth, ctx: Ctx) -> dict[str, Any]:
        return await run_in_threadpool(status_view, ctx, session.operator)


async def progress_stream(ctx: ConsoleContext, workflow_id: str) -> AsyncIterator[str]:
    """Server-Sent Events: one ``progress`` event per change, ``end`` once the workflow ends.

    The hub's callback runs on a runner thread; it only sets an event on this loop, and the
    stream then reads the stored progress (coalescing bursts of byte counts into one event).
    """
    activations = ctx.services.activations
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def on_change(_progress: Progress) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the client is gone
            loop.call_soon_threadsafe(changed.set)

    unsubscribe = activations.subscribe(on_change, workflow_id)
    try:
        last: str | None = None
        while True:
            progress = await run_in_threadpool(activations.progress, workflow_id)
            doc = json.dumps(progress_json(progress), sort_keys=True)
            if doc != last:
                yield f"event: progress\nid: {progress.state.value}\ndata: {doc}\n\n"
                last = doc
            if is_terminal(progress.state):
                yield "event: end\ndata: {}\n\n"
                return
            try:
                await asyncio.wait_for(changed.wait(), timeout=ctx.settings.sse_keepalive_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
            changed.clear()
    finally:
        unsubscribe()
