"""Server-rendered console pages: plain HTML forms that work without JavaScript.

``console.js`` only adds live progress (Server-Sent Events) and the in-page ledger proof check.
A form that fails comes back to its page with ``?error=<code>`` (post/redirect/get), and the page
says what went wrong in words; the API carries the same refusal as problem+json.
What a page offers follows the operator's permissions, but every action is checked again by the
server whatever the page showed.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from forecourt.core import DataCategory
from forecourt.edge.app.api import (
    audit_view,
    consent_view,
    decide,
    list_reviews,
    login,
    record_consent,
    start_activation,
    status_view,
)
from forecourt.edge.app.consent import ConsentAnswers
from forecourt.edge.app.context import Auth, ConsoleContext, Ctx
from forecourt.edge.app.presenters import (
    feature_json,
    operator_json,
    progress_json,
    vehicles_json,
)
from forecourt.edge.app.problems import HANDLED, ConsoleProblem, problem_for
from forecourt.edge.app.security import (
    SESSION_COOKIE,
    clear_session_cookie,
    set_session_cookie,
)
from forecourt.edge.operators import (
    AuthenticatedSession,
    AuthenticationFailed,
    OperatorError,
    ReviewState,
    Role,
    permissions_of,
)
from forecourt.edge.operators.repository import OperatorRepository, to_operator
from forecourt.edge.workflow import WorkflowState
from forecourt.logging import get_logger

_log = get_logger("edge.app.pages")

MESSAGES = {
    "login_failed": "Sign-in failed. Check your username, password and the current code.",
    "enrolment_refused": "This account cannot be set up here. Ask your dealer administrator.",
    "csrf_mismatch": "The form had expired. Please try again.",
    "permission_denied": "Your role does not allow this.",
    "self_review_refused": "You requested this yourself; a second operator must decide it.",
    "reviewer_not_qualified": "Your role may not decide this kind of request.",
    "step_up_failed": "The authenticator code was wrong or already used. Wait for the next code.",
    "review_expired": "This request has expired.",
    "review_state_conflict": "This request was already decided.",
    "vehicle_unknown": "That car is not on the network.",
    "feature_unknown": "Choose features from the list.",
    "consent_invalid": "The answers do not fit this market's rules.",
    "validation_failed": "Some fields are missing or not valid.",
    "workflow_not_cancellable": "The car is applying; it can no longer be cancelled.",
    "operation_refused": "The operation was refused.",
}
NOTICES = {
    "consent_saved": "The customer's choices are recorded.",
    "approved": "Approved. The activation continues.",
    "rejected": "Rejected. The requester sees your note.",
    "enrolled": "Authenticator set up.",
}
LANDING = {Role.AUDITOR: "/audit"}


def _templates(request: Request) -> Jinja2Templates:
    templates = request.app.state.templates
    assert isinstance(templates, Jinja2Templates)
    return templates


def _render(
    request: Request,
    name: str,
    page: str,
    session: AuthenticatedSession | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    perms = {p.value for p in permissions_of(session.operator.role)} if session else set()
    error = request.query_params.get("error")
    notice = request.query_params.get("notice")
    context = {
        "page": page,
        "me": operator_json(session.operator) if session else None,
        "perms": perms,
        "csrf_token": session.csrf_token if session else None,
        "error": MESSAGES.get(error or "", "Something went wrong.") if error else None,
        "notice": NOTICES.get(notice or "") if notice else None,
        **values,
    }
    return _templates(request).TemplateResponse(request, name, context, status_code=status_code)


def _back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


async def _attempt(path: str, fn: Any, *args: Any, **query: str) -> tuple[Any, Response | None]:
    """Run a form's action; on a refusal, the redirect back with its code (and logged)."""
    try:
        return await run_in_threadpool(fn, *args), None
    except HANDLED as exc:
        problem: ConsoleProblem = problem_for(exc)
        _log.info("form_refused", path=path, code=problem.code.value)
        return None, _back(path, error=problem.code.value, **query)


def create_pages_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    _sign_in_pages(router)
    _technician_pages(router)
    _review_and_consent_pages(router)
    _audit_and_status_pages(router)
    return router


def _sign_in_pages(router: APIRouter) -> None:

    # -- sign in ----------------------------------------------------------------------------

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, ctx: Ctx) -> HTMLResponse:
        return _render(request, "login.html", "login", None, dealer_id=ctx.services.dealer_id)

    @router.post("/login")
    async def login_submit(
        request: Request,
        ctx: Ctx,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        totp_code: Annotated[str, Form(max_length=16)],
    ) -> Response:
        addr = request.client.host if request.client else None
        try:
            result = await run_in_threadpool(
                login, ctx, username, password, totp_code.strip(), addr
            )
        except AuthenticationFailed:
            return _render(
                request,
                "login.html",
                "login",
                None,
                status_code=401,
                dealer_id=ctx.services.dealer_id,
                username=username,
                login_error=MESSAGES["login_failed"],
            )
        response = RedirectResponse(LANDING.get(result.operator.role, "/dashboard"), 303)
        set_session_cookie(response, request, ctx.settings, result, ctx.services.clock())
        return response

    @router.get("/login/enrol", response_class=HTMLResponse)
    async def enrol_page(request: Request, ctx: Ctx) -> HTMLResponse:
        return _render(request, "enrol.html", "login", None, enrolment=None)

    @router.post("/login/enrol", response_class=HTMLResponse)
    async def enrol_submit(
        request: Request,
        ctx: Ctx,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> HTMLResponse:
        enrolment = await run_in_threadpool(_first_login_enrolment, ctx, username, password)
        if enrolment is None:
            return _render(
                request,
                "enrol.html",
                "login",
                None,
                status_code=401,
                enrolment=None,
                username=username,
                login_error=MESSAGES["enrolment_refused"],
            )
        return _render(request, "enrol.html", "login", None, enrolment=enrolment, username=username)

    @router.post("/logout")
    async def logout(request: Request, session: Auth, ctx: Ctx) -> Response:
        await run_in_threadpool(
            ctx.services.operators.logout, request.cookies.get(SESSION_COOKIE, "")
        )
        response = RedirectResponse("/login", 303)
        clear_session_cookie(response, request, ctx.settings)
        return response

    @router.get("/")
    async def home(session: Auth) -> Response:
        return RedirectResponse(LANDING.get(session.operator.role, "/dashboard"), 303)


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
        return _render(
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
            return _back("/dashboard", error="feature_unknown", vin=vin)
        workflow_id, failed = await _attempt(
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
        return _render(
            request, "reviews.html", "reviews", session, pending=pending, decided=decided
        )

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

        _, failed = await _attempt("/reviews", run)
        return failed or _back("/reviews", notice="approved")

    @router.post("/reviews/{review_id}/reject")
    async def reject(
        review_id: str,
        session: Auth,
        ctx: Ctx,
        note: Annotated[str, Form(min_length=1, max_length=500)],
    ) -> Response:
        def run() -> object:
            return decide(ctx, session.operator, review_id, code=None, note=note)

        _, failed = await _attempt("/reviews", run)
        return failed or _back("/reviews", notice="rejected")

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
        return _render(
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
        _, failed = await _attempt(
            "/consent", record_consent, ctx, session.operator, captured, vin=vin, lang=lang
        )
        return failed or _back("/consent", vin=vin, lang=lang, notice="consent_saved")


def _audit_and_status_pages(router: APIRouter) -> None:
    # -- auditor and status ---------------------------------------------------------------------

    @router.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        view = await run_in_threadpool(
            audit_view, ctx, session.operator, ctx.settings.ledger_page_size
        )
        return _render(request, "audit.html", "audit", session, **view)

    @router.get("/status", response_class=HTMLResponse)
    async def status(request: Request, session: Auth, ctx: Ctx) -> HTMLResponse:
        view = await run_in_threadpool(status_view, ctx, session.operator)
        return _render(request, "status.html", "status", session, **view)


def _first_login_enrolment(
    ctx: ConsoleContext, username: str, password: str
) -> dict[str, str] | None:
    """The QR enrolment for an operator who has never set up an authenticator, or ``None``.

    The password is checked by :meth:`OperatorService.login` itself (with an empty code), so a
    wrong password counts towards the lock-out exactly like any login; only the answer "password
    right, code missing" goes on. An account that already has a second factor never gets a new
    one here (that would let a stolen password replace the phone) — an administrator resets it.
    """
    services = ctx.services
    try:
        services.operators.login(services.dealer_id, username, password, "")
    except AuthenticationFailed as exc:
        if exc.reason != "totp":
            return None
    else:  # pragma: no cover - an empty code never matches
        return None
    with services.sessions() as s:
        row = OperatorRepository(s).by_username(services.dealer_id, username)
        operator = None if row is None else to_operator(row)
    if operator is None or operator.totp_enrolled:
        _log.warning("enrolment_refused", reason="already_enrolled" if operator else "unknown")
        return None
    try:
        enrolment = services.operators.begin_totp_enrolment(operator)
    except OperatorError:
        return None
    return {
        "qr": enrolment.qr_svg_data_uri(scale=5),
        "secret": enrolment.secret,
        "uri": enrolment.provisioning_uri,
    }
