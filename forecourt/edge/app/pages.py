"""Server-rendered console pages: plain HTML forms that work without JavaScript.

``console.js`` only adds live progress (Server-Sent Events) and the in-page ledger proof check.
A form that fails comes back to its page with ``?error=<code>`` (post/redirect/get), and the page
says what went wrong in words; the API carries the same refusal as problem+json.
What a page offers follows the operator's permissions, but every action is checked again by the
server whatever the page showed.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from forecourt.core import DataCategory
from forecourt.edge.app.api import (
    audit_view,
    consent_view,
    decide,
    list_reviews,
    record_consent,
    start_activation,
    status_view,
)
from forecourt.edge.app.consent import ConsentAnswers
from forecourt.edge.app.context import Auth, Ctx
from forecourt.edge.app.operator_pages import add_operator_pages
from forecourt.edge.app.presenters import (
    feature_json,
    progress_json,
    vehicles_json,
)
from forecourt.edge.app.rendering import attempt, back, render
from forecourt.edge.app.signin_pages import add_sign_in_pages
from forecourt.edge.operators import (
    ReviewState,
)
from forecourt.edge.workflow import WorkflowState
from forecourt.logging import get_logger

_log = get_logger("edge.app.pages")


def create_pages_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    add_sign_in_pages(router)
    add_operator_pages(router)
    _technician_pages(router)
    _review_and_consent_pages(router)
    _audit_and_status_pages(router)
    return router


def _technician_pages(router: APIRouter) -> None:
    # -- technician -------------------------------------------------------------------------

    @router.get("/dashboard", response_class=HTMLResponse)
    async def dashboard(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        activations = ctx.services.activations
        workflows = await run_in_threadpool(activations.list, session.operator)
        cars = await run_in_threadpool(vehicles_json, ctx.services, workflows)
        recent = [
            progress_json(await run_in_threadpool(activations.progress, wf.id))
            for wf in workflows[:12]
        ]
        return render(
            request,
            "dashboard.html",
            "dashboard",
            session,
            cars=cars,
            features=[feature_json(f) for f in ctx.services.features],
            workflows=recent,
            selected=request.query_params.get("vin"),
            activatable={
                "new",
                *(
                    s.value
                    for s in (
                        WorkflowState.FAILED,
                        WorkflowState.REFUSED,
                        WorkflowState.CANCELLED,
                        WorkflowState.DONE,
                    )
                ),
            },
        )

    @router.post("/dashboard/activate")
    async def activate(
        request: Request,
        session: Auth,
        ctx: Ctx,
        vin: Annotated[str, Form(max_length=17)],
        features: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        chosen = features or []
        if not chosen:
            return back("/dashboard", error="feature_unknown", vin=vin)
        workflow_id, failed = await attempt(
            "/dashboard", start_activation, ctx, session.operator, vin, chosen, vin=vin
        )
        if failed is not None:
            return failed
        return RedirectResponse(f"/dashboard#wf-{quote(workflow_id)}", 303)


def _review_and_consent_pages(router: APIRouter) -> None:
    # -- reviews ----------------------------------------------------------------------------

    @router.get("/reviews", response_class=HTMLResponse)
    async def reviews(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        pending = await run_in_threadpool(list_reviews, ctx, session.operator, ReviewState.PENDING)
        everything = await run_in_threadpool(list_reviews, ctx, session.operator, None)
        decided = [r for r in everything if r["state"] != "pending"][:20]
        return render(request, "reviews.html", "reviews", session, pending=pending, decided=decided)

    @router.post("/reviews/{review_id}/approve")
    async def approve(
        review_id: str,
        session: Auth,
        ctx: Ctx,
        totp_code: Annotated[str, Form(max_length=16)],
        note: Annotated[str | None, Form(max_length=500)] = None,
    ) -> Response:
        def run() -> object:
            return decide(ctx, session.operator, review_id, code=totp_code.strip(), note=note)

        _, failed = await attempt("/reviews", run)
        return failed or back("/reviews", notice="approved")

    @router.post("/reviews/{review_id}/reject")
    async def reject(
        review_id: str,
        session: Auth,
        ctx: Ctx,
        note: Annotated[str, Form(min_length=1, max_length=500)],
    ) -> Response:
        def run() -> object:
            return decide(ctx, session.operator, review_id, code=None, note=note)

        _, failed = await attempt("/reviews", run)
        return failed or back("/reviews", notice="rejected")

    # -- customer consent (tablet) ------------------------------------------------------------

    @router.get("/consent", response_class=HTMLResponse)
    async def consent(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        vin = request.query_params.get("vin")
        cars = ctx.services.vehicles.discovered()
        view = None
        if vin:
            view = await run_in_threadpool(
                consent_view, ctx, session.operator, vin, request.query_params.get("lang")
            )
        return render(
            request,
            "consent.html",
            "consent",
            session,
            cars=cars,
            view=view,
            vin=vin,
            gpc=request.headers.get("sec-gpc") == "1",
        )

    @router.post("/consent")
    async def consent_submit(request: Request, session: Auth, ctx: Ctx) -> Response:
        form = await request.form()
        vin = str(form.get("vin", ""))
        lang = str(form.get("language", ""))
        answers: dict[DataCategory, bool] = {}
        for category in DataCategory:
            value = form.get(f"c_{category.value}")
            if value in ("grant", "deny"):
                answers[category] = value == "grant"
        cross = form.get("cross_border")
        captured = ConsentAnswers(
            vin=vin,
            subject_ref=str(form.get("subject_ref", "")),
            notice_version=str(form.get("notice_version", "")),
            language=lang,
            answers=answers,
            cross_border=None if cross not in ("grant", "deny") else cross == "grant",
            gpc=form.get("gpc") == "on" or request.headers.get("sec-gpc") == "1",
        )
        _, failed = await attempt(
            "/consent", record_consent, ctx, session.operator, captured, vin=vin, lang=lang
        )
        return failed or back("/consent", vin=vin, lang=lang, notice="consent_saved")


def _audit_and_status_pages(router: APIRouter) -> None:
    # -- auditor and status ---------------------------------------------------------------------

    @router.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        view = await run_in_threadpool(
            audit_view, ctx, session.operator, ctx.settings.ledger_page_size
        )
        return render(request, "audit.html", "audit", session, **view)

    @router.get("/status", response_class=HTMLResponse)
    async def status(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        view = await run_in_threadpool(status_view, ctx, session.operator)
        return render(request, "status.html", "status", session, **view)
