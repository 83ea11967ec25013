"""Sessions, CSRF and response headers: the console's browser-facing security in one place.

* The session token lives only in an ``HttpOnly``, ``SameSite=Strict`` cookie, ``Secure`` when the
  console is served over TLS (or when settings force it); the database keeps only its SHA-256.
* Every state-changing request (any method but GET/HEAD/OPTIONS) carries the session's CSRF token,
  in the ``X-CSRF-Token`` header (scripts) or the ``csrf_token`` form field (plain forms), checked
  by :meth:`OperatorService.check_csrf` in constant time. Logging in is the one exception: there
  is no session yet, and ``SameSite=Strict`` keeps a foreign site from riding one.
* Headers: a CSP without inline script or style, ``X-Frame-Options: DENY``, no referrer, no
  MIME sniffing, no caching of pages that show personal or audit data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.edge.app.services import ConsoleSettings, EdgeServices
from forecourt.edge.operators import AuthenticatedSession, LoginResult

SESSION_COOKIE = "fc_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


async def add_security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith("/static/"):
        response.headers.setdefault("cache-control", "no-store")
    if request.url.scheme == "https":
        response.headers.setdefault("strict-transport-security", "max-age=31536000")
    return response


def cookie_secure(request: Request, settings: ConsoleSettings) -> bool:
    if settings.secure_cookies is not None:
        return settings.secure_cookies
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response,
    request: Request,
    settings: ConsoleSettings,
    login: LoginResult,
    now: datetime,
) -> None:
    """The session cookie, living as long as the session (relative: the box's clock decides)."""
    response.set_cookie(
        SESSION_COOKIE,
        login.session_token,
        max_age=max(0, int((login.expires_at - now).total_seconds())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, settings),
    )


def clear_session_cookie(response: Response, request: Request, settings: ConsoleSettings) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, settings),
    )


async def current_session(request: Request, services: EdgeServices) -> AuthenticatedSession:
    """The live session of this request, or a ``session_required``/``session_invalid`` problem.

    For a state-changing method the CSRF token is checked here too, so no route can forget it.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ConsoleProblem(401, ProblemCode.SESSION_REQUIRED, "Not signed in", "sign in first")
    session = await run_in_threadpool(services.operators.authenticate, token)
    if request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and _is_form(request):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        services.operators.check_csrf(session, presented)
    return session


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
