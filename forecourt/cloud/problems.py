"""Errors as RFC 9457 problem details, each with a stable ``code``.

A service raises :class:`CloudProblem` (or a subclass); the app's handler turns it into
``application/problem+json`` with ``type`` = ``urn:forecourt:problem:<code>``, ``title``,
``status``, ``detail``, ``code`` and any extension members (an activation refusal carries its
``reasons``, each with its own stable code). Clients and tests key on ``code``, never on text.
"""

from __future__ import annotations

from enum import StrEnum

from fastapi import FastAPI, Request
from fastapi.responses import Response

from forecourt.http.problems import Problem, problem_response
from forecourt.http.problems import install_problem_handlers as install_handlers
from forecourt.logging import get_logger

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
    LIFECYCLE_TRANSITION = "lifecycle_transition_not_allowed"
    TRIAL_ALREADY_USED = "trial_already_used"
    OPERATOR_NOT_PERMITTED = "operator_not_permitted"
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
    REQUEST_BODY_TOO_LARGE = "request_body_too_large"
    CRL_UNAVAILABLE = "crl_unavailable"
    IMAGE_NOT_PUBLISHED = "image_not_published"
    """The image repository's published targets (signed offline) lack an image a plan needs,
    or no usable image targets are published where the cloud holds no image targets key."""


class CloudProblem(Problem[ProblemCode]):
    """A refusal the cloud API answers with a problem document (never a stack trace)."""


def _respond(request: Request, problem: Problem[ProblemCode]) -> Response:
    _log.warning(
        "request_refused",
        path=request.url.path,
        method=request.method,
        status=problem.status,
        code=problem.code.value,
        detail=problem.detail,
    )
    headers = {"www-authenticate": "Bearer"} if problem.status == 401 else None
    return problem_response(problem, request.url.path, headers=headers)


def _as_problem(exc: Exception) -> CloudProblem:
    assert isinstance(exc, CloudProblem)
    return exc


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through the problem document."""
    install_handlers(
        app,
        handled=(CloudProblem,),
        to_problem=_as_problem,
        respond=_respond,
        validation_failed=ProblemCode.VALIDATION_FAILED,
        not_found=ProblemCode.NOT_FOUND,
    )
