"""Sign-in, first sign-in with an enrolment code, sign-out.

First sign-in (an operator an administrator has just added) runs in two forms:

1. username + the one-time enrolment code → :meth:`OperatorService.begin_enrolment` checks the code
   and the page shows the new TOTP secret as a QR code (and as text for manual entry);
2. the operator's own password (twice) + the first code their app shows →
   :meth:`OperatorService.complete_enrolment` spends the enrolment code, sets the password and
   confirms the authenticator. The page then asks for one more code to sign in: a TOTP code is
   never accepted twice (RFC 6238 §5.2), and the first one was spent proving the enrolment.

The enrolment code travels only in POST bodies (a hidden field of the second form, which is
served with ``Cache-Control: no-store``), never in a URL or a log. Refusals name what went wrong
(wrong or unknown, expired, already used, locked, wrong authenticator code); a wrong code counts
towards the account's lock-out as the service decides. Both forms carry the pre-session CSRF token
(:mod:`forecourt.edge.app.presession`), as does the sign-in form.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from forecourt.edge.app.api import login
from forecourt.edge.app.context import Auth, ConsoleContext, Ctx
from forecourt.edge.app.presession import (
    FORM_FIELD,
    check_form_token,
    form_token,
    set_form_cookie,
)
from forecourt.edge.app.rendering import MESSAGES, render
from forecourt.edge.app.security import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from forecourt.edge.operators import (
    AuthenticationFailed,
    EnrolmentRefused,
    PasswordPolicyViolation,
    Role,
)
from forecourt.logging import get_logger

_log = get_logger("edge.app.signin")

LANDING = {Role.AUDITOR: "/audit"}

#: One sentence per :class:`EnrolmentRefused` reason. An unknown username and a wrong code read
#: the same, so the page does not tell a guesser which usernames exist.
ENROLMENT_MESSAGES = {
    "unknown": "Username or enrolment code not accepted. Check both and try again.",
    "wrong_code": "Username or enrolment code not accepted. Check both and try again.",
    "expired": "This enrolment code has expired (codes last 24 hours). "
    "Ask your dealer administrator for a new one.",
    "used": "This enrolment code has already been used. Sign in with your password, "
    "or ask your dealer administrator for a new code.",
    "inactive": "This account is not active. Ask your dealer administrator.",
    "locked": "Too many wrong attempts: this account is locked for a while. "
    "Try again later or ask your dealer administrator.",
    "wrong_totp": "The authenticator code was not accepted. Check the phone's clock and enter "
    "the code the app shows now.",
}
PASSWORDS_DIFFER = "The two passwords differ. Enter the same new password twice."


def enrolment_message(reason: str) -> str:
    return ENROLMENT_MESSAGES.get(reason, MESSAGES["enrolment_refused"])


def _page(
    request: Request,
    ctx: ConsoleContext,
    name: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A pre-session page whose forms carry the double-submit token (cookie set alongside)."""
    token = form_token(request)
    response = render(
        request,
        name,
        "login",
        None,
        status_code=status_code,
        dealer_id=ctx.services.dealer_id,
        form_token=token,
        **values,
    )
    set_form_cookie(response, request, ctx.settings, token)
    return response


def add_sign_in_pages(router: APIRouter) -> None:
    _login_routes(router)
    _enrolment_routes(router)


def _login_routes(router: APIRouter) -> None:
    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, ctx: Ctx) -> HTMLResponse:
        return _page(request, ctx, "login.html")

    @router.post("/login")
    async def login_submit(
        *,
        request: Request,
        ctx: Ctx,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        totp_code: Annotated[str, Form(max_length=16)],
        form_token: Annotated[str | None, Form(alias=FORM_FIELD, max_length=100)] = None,
    ) -> Response:
        check_form_token(request, form_token)
        addr = request.client.host if request.client else None
        try:
            result = await run_in_threadpool(
                login, ctx, username, password, totp_code.strip(), addr
            )
        except AuthenticationFailed:
            return _page(
                request,
                ctx,
                "login.html",
                status_code=401,
                username=username,
                login_error=MESSAGES["login_failed"],
            )
        response = RedirectResponse(LANDING.get(result.operator.role, "/dashboard"), 303)
        set_session_cookie(response, request, ctx.settings, result, ctx.services.clock())
        return response

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


def _enrolment_routes(router: APIRouter) -> None:
    @router.get("/login/enrol", response_class=HTMLResponse)
    async def enrol_page(request: Request, ctx: Ctx) -> HTMLResponse:
        return _page(request, ctx, "enrol.html", step="code")

    @router.post("/login/enrol", response_class=HTMLResponse)
    async def enrol_code(
        request: Request,
        ctx: Ctx,
        username: Annotated[str, Form(min_length=1, max_length=64)],
        enrolment_code: Annotated[str, Form(min_length=1, max_length=64)],
        form_token: Annotated[str | None, Form(alias=FORM_FIELD, max_length=100)] = None,
    ) -> HTMLResponse:
        check_form_token(request, form_token)
        username, code = username.strip(), enrolment_code.strip()
        services = ctx.services
        try:
            enrolment = await run_in_threadpool(
                services.operators.begin_enrolment, services.dealer_id, username, code
            )
        except EnrolmentRefused as exc:
            ctx.metrics.login_failures.labels("enrolment").inc()
            return _page(
                request,
                ctx,
                "enrol.html",
                status_code=401,
                step="code",
                username=username,
                login_error=enrolment_message(exc.reason),
            )
        return _page(
            request,
            ctx,
            "enrol.html",
            step="password",
            username=username,
            enrolment_code=code,
            qr=enrolment.qr_svg_data_uri(scale=5),
            secret=enrolment.secret,
        )

    @router.post("/login/enrol/complete", response_class=HTMLResponse)
    async def enrol_complete(
        *,
        request: Request,
        ctx: Ctx,
        username: Annotated[str, Form(min_length=1, max_length=64)],
        enrolment_code: Annotated[str, Form(min_length=1, max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        password_again: Annotated[str, Form(max_length=1024)],
        totp_code: Annotated[str, Form(max_length=16)],
        form_token: Annotated[str | None, Form(alias=FORM_FIELD, max_length=100)] = None,
    ) -> HTMLResponse:
        check_form_token(request, form_token)
        retry = {"step": "password", "username": username, "enrolment_code": enrolment_code}
        if password != password_again:
            return _page(
                request, ctx, "enrol.html", status_code=422, login_error=PASSWORDS_DIFFER, **retry
            )
        services = ctx.services
        try:
            await run_in_threadpool(
                services.operators.complete_enrolment,
                services.dealer_id,
                username,
                enrolment_code,
                password,
                totp_code.strip(),
            )
        except PasswordPolicyViolation as exc:
            message = f"Choose another password: it is {exc.rule}."
            return _page(request, ctx, "enrol.html", status_code=422, login_error=message, **retry)
        except EnrolmentRefused as exc:
            ctx.metrics.login_failures.labels("enrolment").inc()
            again = retry if exc.reason == "wrong_totp" else {"step": "code", "username": username}
            return _page(
                request,
                ctx,
                "enrol.html",
                status_code=401,
                login_error=enrolment_message(exc.reason),
                **again,
            )
        _log.info("console_enrolment_completed", username=username)
        return _page(
            request,
            ctx,
            "login.html",
            username=username,
            login_notice="Your password and authenticator are set up. Sign in with the next "
            "code your app shows.",
        )
