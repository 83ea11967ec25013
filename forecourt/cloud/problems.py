"""Errors as RFC 9457 problem details, each with a stable ``code``.

A service raises :class:`CloudProblem` (or a subclass); the app's handler turns it into
``application/problem+json`` with ``type`` = ``urn:forecourt:problem:<code>``, ``title``,
``status``, ``detail``, ``code`` and any extension members (an activation refusal carries its
``reasons``, each with its own stable code). Clients and tests key on ``code``, never on text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from forecourt.logging import get_logger

PROBLEM_JSON = "application/problem+json"
_log = get_logger("cloud.problems")


class ProblemCode(StrEnum):
    """Every code a cloud error can carry; the activation reason codes are listed apart."""

    CLIENT_CERTIFICATE_REQUIRED = "client_certificate_required"
    CLIENT_CERTIFICATE_INVALID = "client_certificate_invalid"
    CLIENT_CERTIFICATE_REVOKED = "client_certificate_revoked"
    CLIENT_CERTIFICATE_EXPIRED = "client_certificate_expired"
    DEALER_UNKNOWN = "dealer_unknown"
    TOKEN_REQUIRED = "token_required"  # noqa: S105 - a code, not a secret
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - a code, not a secret
    SCOPE_MISSING = "scope_missing"
    VALIDATION_FAILED = "validation_failed"
    NOT_FOUND = "not_found"
    VEHICLE_UNKNOWN = "vehicle_unknown"
    FEATURE_UNKNOWN = "feature_unknown"
    ENTITLEMENT_UNKNOWN = "entitlement_unknown"
    ENTITLEMENT_TRANSITION = "entitlement_transition_not_allowed"
    PROFILE_UNKNOWN = "compliance_profile_unknown"
    PACKAGE_UNKNOWN = "package_unknown"
    PACKAGE_BLOB_MISSING = "package_blob_missing"
    ACTIVATION_REFUSED = "activation_refused"
    ACTIVATION_IN_PROGRESS = "activation_in_progress"
    ACTIVATION_UNKNOWN = "activation_unknown"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    OFFLINE_PACKAGE_UNKNOWN = "offline_package_unknown"
    OFFLINE_NOT_ASSIGNED = "offline_vehicle_not_assigned"
    IMPORT_FORMAT = "import_format_invalid"


class CloudProblem(Exception):
    """A refusal the API answers with a problem document (never a stack trace)."""

    def __init__(
        self, status: int, code: ProblemCode, title: str, detail: str, **extensions: Any
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extensions = extensions

    def document(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body."""
        body: dict[str, Any] = {
            "type": f"urn:forecourt:problem:{self.code.value}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code.value,
        }
        if instance is not None:
            body["instance"] = instance
        body.update(self.extensions)
        return body


def problem_response(problem: CloudProblem, instance: str | None = None) -> JSONResponse:
    """A ``JSONResponse`` with the problem media type."""
    headers = {"www-authenticate": "Bearer"} if problem.status == 401 else None
    return JSONResponse(
        problem.document(instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through the problem document."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CloudProblem)
        _log.warning(
            "request_refused",
            path=request.url.path,
            method=request.method,
            status=exc.status,
            code=exc.code.value,
            detail=exc.detail,
        )
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        problem = CloudProblem(
            422,
            ProblemCode.VALIDATION_FAILED,
            "Request is not valid",
            "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors),
            errors=errors,
        )
        return await on_problem(request, problem)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = CloudProblem(
            exc.status_code,
            ProblemCode.NOT_FOUND if exc.status_code == 404 else ProblemCode.VALIDATION_FAILED,
            "Not found" if exc.status_code == 404 else "Request refused",
            str(exc.detail),
        )
        return problem_response(problem, request.url.path)

    app.add_exception_handler(CloudProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
