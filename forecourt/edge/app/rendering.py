"""How console pages answer: templates with the operator's context, and post/redirect/get.

A form that fails comes back to its page with ``?error=<code>`` and the page says what went wrong
in words (:data:`MESSAGES`); a form that succeeds comes back with ``?notice=<code>``
(:data:`NOTICES`). Only these codes ever go in a URL: never a code, a password or a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from forecourt.edge.app.presenters import operator_json
from forecourt.edge.app.problems import HANDLED, ConsoleProblem, problem_for
from forecourt.edge.operators import AuthenticatedSession, permissions_of
from forecourt.logging import get_logger

_log = get_logger("edge.app.pages")

MESSAGES = {
    "login_failed": "Sign-in failed. Check your username, password and the current code.",
    "enrolment_refused": "This account cannot be set up here. Ask your dealer administrator.",
    "csrf_mismatch": "The form had expired. Please try again.",
    "permission_denied": "Your role does not allow this.",
    "self_review_refused": "You requested this yourself; a second operator must decide it.",
    "subject_review_refused": "This request is about your own account; another operator decides.",
    "reviewer_not_qualified": "Your role may not decide this kind of request.",
    "step_up_failed": "The authenticator code was wrong or already used. Wait for the next code.",
    "review_expired": "This request has expired.",
    "review_state_conflict": "This request was already decided.",
    "vehicle_unknown": "That car is not on the network.",
    "feature_unknown": "Choose features from the list.",
    "consent_invalid": "The answers do not fit this market's rules.",
    "validation_failed": "Some fields are missing or not valid.",
    "workflow_not_cancellable": "The car is applying; it can no longer be cancelled.",
    "username_taken": "That username already exists at this dealer.",
    "privilege_change_pending": "A role change for this account already awaits review.",
    "not_found": "No such operator.",
    "operation_refused": "The operation was refused.",
}
NOTICES = {
    "consent_saved": "The customer's choices are recorded.",
    "approved": "Approved.",
    "rejected": "Rejected. The requester sees your note.",
    "enrolled": "Authenticator set up.",
    "role_changed": "Role changed. The operator's sessions have ended.",
    "role_awaiting_review": "Role change requested: awaiting review by a second operator.",
    "deactivated": "Account deactivated; its sessions have ended.",
    "activated": "Account activated.",
}


def templates_of(request: Request) -> Jinja2Templates:
    templates = request.app.state.templates
    assert isinstance(templates, Jinja2Templates)
    return templates


def render(
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
    return templates_of(request).TemplateResponse(request, name, context, status_code=status_code)


def back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


async def attempt(
    path: str, fn: Callable[..., Any], *args: Any, **query: str
) -> tuple[Any, Response | None]:
    """Run a form's action; on a refusal, the redirect back with its code (and logged)."""
    try:
        return await run_in_threadpool(fn, *args), None
    except HANDLED as exc:
        problem: ConsoleProblem = problem_for(exc)
        _log.info("form_refused", path=path, code=problem.code.value)
        return None, back(path, error=problem.code.value, **query)
