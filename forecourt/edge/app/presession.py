"""CSRF for the forms posted before a session exists: sign-in and first sign-in (enrolment).

There is no session yet whose CSRF token a form could carry, so these forms use a double-submit
token: the page that shows the form sets a random token in an ``HttpOnly``, ``SameSite=Strict``
cookie scoped to ``/login`` and repeats it in a hidden field; the POST is accepted only when the
two agree (constant-time). A foreign site can neither read the cookie nor make the browser send it,
so it cannot post a sign-in (login CSRF) or spend an enrolment code in the victim's browser.
The token is not a secret of the account and is never logged.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response

from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.edge.app.security import cookie_secure
from forecourt.edge.app.services import ConsoleSettings
from forecourt.edge.operators.tokens import tokens_equal
from forecourt.logging import get_logger

_log = get_logger("edge.app.presession")

FORM_COOKIE = "fc_form"
FORM_FIELD = "form_token"
FORM_PATH = "/login"
#: Long enough to read the enrolment page and set up a phone; short enough to go stale.
FORM_TOKEN_MAX_AGE_S = 30 * 60


class FormTokenMismatch(ConsoleProblem):
    """A pre-session form arrived without the token its page set (or with another one).

    Answered like a session form's CSRF refusal: 403 ``csrf_mismatch``.
    """

    def __init__(self, path: str) -> None:
        super().__init__(
            403,
            ProblemCode.CSRF_MISMATCH,
            "Form token missing or wrong",
            "reload the page and try again",
        )
        self.path = path


def form_token(request: Request) -> str:
    """The token a page should put in its form: the browser's current one, else a new one."""
    current = request.cookies.get(FORM_COOKIE)
    if current and 20 <= len(current) <= 100:
        return current
    return secrets.token_urlsafe(32)


def set_form_cookie(
    response: Response, request: Request, settings: ConsoleSettings, token: str
) -> None:
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=FORM_TOKEN_MAX_AGE_S,
        path=FORM_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, settings),
    )


def check_form_token(request: Request, presented: str | None) -> None:
    """Refuse (:class:`FormTokenMismatch`, logged) unless cookie and form field agree."""
    cookie = request.cookies.get(FORM_COOKIE)
    if not cookie or not presented or not tokens_equal(cookie, presented):
        _log.warning("form_token_refused", path=request.url.path, cookie_present=bool(cookie))
        raise FormTokenMismatch(request.url.path)
