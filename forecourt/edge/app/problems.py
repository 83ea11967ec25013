"""Errors of the console's API as RFC 9457 problem details with stable codes.

Every refusal a service raises (operators, reviews, workflow) maps to one :class:`ProblemCode`
here, in one table, so a client keys on ``code`` and never on text. Under ``/api`` the answer is
``application/problem+json``; a console page gets the same status with a readable HTML page, and
an unauthenticated page request is sent to the login page instead.
"""

from __future__ import annotations

from enum import StrEnum

from forecourt.edge.operators import (
    AuthenticationFailed,
    CsrfMismatch,
    EnrolmentRefused,
    OperatorError,
    OperatorNotFound,
    PasswordPolicyViolation,
    PermissionDenied,
    PrivilegeChangePending,
    ReviewerNotQualified,
    ReviewExpired,
    ReviewNotFound,
    ReviewStateConflict,
    SelfReviewRefused,
    SessionInvalid,
    StepUpFailed,
    SubjectReviewRefused,
    TotpEnrolmentError,
    UsernameTaken,
)
from forecourt.edge.workflow import WorkflowError, WorkflowNotCancellable, WorkflowNotFound
from forecourt.http.problems import Problem


class ProblemCode(StrEnum):
    SESSION_REQUIRED = "session_required"
    SESSION_INVALID = "session_invalid"
    CSRF_MISMATCH = "csrf_mismatch"
    LOGIN_FAILED = "login_failed"
    PERMISSION_DENIED = "permission_denied"
    SELF_REVIEW_REFUSED = "self_review_refused"
    SUBJECT_REVIEW_REFUSED = "subject_review_refused"
    REVIEWER_NOT_QUALIFIED = "reviewer_not_qualified"
    STEP_UP_FAILED = "step_up_failed"
    REVIEW_NOT_FOUND = "review_not_found"
    REVIEW_EXPIRED = "review_expired"
    REVIEW_STATE_CONFLICT = "review_state_conflict"
    WORKFLOW_NOT_FOUND = "workflow_not_found"
    WORKFLOW_NOT_CANCELLABLE = "workflow_not_cancellable"
    VEHICLE_UNKNOWN = "vehicle_unknown"
    FEATURE_UNKNOWN = "feature_unknown"
    CONSENT_INVALID = "consent_invalid"
    TOTP_ENROLMENT_REFUSED = "totp_enrolment_refused"
    ENROLMENT_REFUSED = "enrolment_refused"
    PASSWORD_POLICY = "password_policy"  # noqa: S105 - a problem code, not a password
    USERNAME_TAKEN = "username_taken"
    PRIVILEGE_CHANGE_PENDING = "privilege_change_pending"
    LEDGER_ENTRY_NOT_FOUND = "ledger_entry_not_found"
    VALIDATION_FAILED = "validation_failed"
    NOT_FOUND = "not_found"
    OPERATION_REFUSED = "operation_refused"


class ConsoleProblem(Problem[ProblemCode]):
    """A refusal answered with a problem document; ``extensions`` add stable members."""


def problem_for(exc: Exception) -> ConsoleProblem:
    """The problem a service error becomes. Login failures never say which factor was wrong."""
    match exc:
        case ConsoleProblem():
            return exc
        case AuthenticationFailed():
            return ConsoleProblem(
                401,
                ProblemCode.LOGIN_FAILED,
                "Login failed",
                "username, password or code not accepted, or the account is locked",
            )
        case SessionInvalid():
            return ConsoleProblem(
                401, ProblemCode.SESSION_INVALID, "Not signed in", "sign in again"
            )
        case CsrfMismatch():
            return ConsoleProblem(
                403,
                ProblemCode.CSRF_MISMATCH,
                "Form token missing or wrong",
                "reload the page and try again",
            )
        case PermissionDenied():
            return ConsoleProblem(
                403,
                ProblemCode.PERMISSION_DENIED,
                "Not permitted",
                f"{exc.permission} refused ({exc.reason})",
                permission=exc.permission,
                reason=exc.reason,
            )
        case SelfReviewRefused():
            return ConsoleProblem(
                403,
                ProblemCode.SELF_REVIEW_REFUSED,
                "You requested this",
                "a second operator must decide a request; the requester never may",
                request_id=exc.request_id,
            )
        case SubjectReviewRefused():
            return ConsoleProblem(
                403,
                ProblemCode.SUBJECT_REVIEW_REFUSED,
                "This request is about you",
                "an operator never decides a change to their own account",
                request_id=exc.request_id,
            )
        case ReviewerNotQualified():
            return ConsoleProblem(
                403,
                ProblemCode.REVIEWER_NOT_QUALIFIED,
                "Role may not decide this",
                f"role {exc.role} may not decide {exc.kind}",
                request_id=exc.request_id,
            )
        case StepUpFailed():
            return ConsoleProblem(
                403,
                ProblemCode.STEP_UP_FAILED,
                "Code not accepted",
                "the authenticator code was wrong or already used",
                request_id=exc.request_id,
            )
        case ReviewNotFound():
            return ConsoleProblem(404, ProblemCode.REVIEW_NOT_FOUND, "No such request", str(exc))
        case ReviewExpired():
            return ConsoleProblem(409, ProblemCode.REVIEW_EXPIRED, "Request expired", str(exc))
        case ReviewStateConflict():
            return ConsoleProblem(
                409,
                ProblemCode.REVIEW_STATE_CONFLICT,
                "Request already decided",
                str(exc),
                state=exc.state,
            )
        case TotpEnrolmentError():
            return ConsoleProblem(
                400, ProblemCode.TOTP_ENROLMENT_REFUSED, "Enrolment refused", exc.reason
            )
        case EnrolmentRefused():
            return ConsoleProblem(
                401,
                ProblemCode.ENROLMENT_REFUSED,
                "Enrolment refused",
                f"first sign-in refused: {exc.reason}",
                reason=exc.reason,
            )
        case PasswordPolicyViolation():
            return ConsoleProblem(
                422, ProblemCode.PASSWORD_POLICY, "Password refused", exc.rule, rule=exc.rule
            )
        case UsernameTaken():
            return ConsoleProblem(
                409,
                ProblemCode.USERNAME_TAKEN,
                "Username taken",
                f"{exc.username!r} already exists at this dealer",
            )
        case PrivilegeChangePending():
            return ConsoleProblem(
                409,
                ProblemCode.PRIVILEGE_CHANGE_PENDING,
                "Awaiting review",
                str(exc),
                operator_id=exc.operator_id,
            )
        case OperatorNotFound():
            return ConsoleProblem(404, ProblemCode.NOT_FOUND, "No such operator", str(exc))
        case WorkflowNotFound():
            return ConsoleProblem(
                404, ProblemCode.WORKFLOW_NOT_FOUND, "No such activation", str(exc)
            )
        case WorkflowNotCancellable():
            return ConsoleProblem(
                409,
                ProblemCode.WORKFLOW_NOT_CANCELLABLE,
                "Cannot cancel now",
                str(exc),
                state=exc.state.value,
            )
        case OperatorError() | WorkflowError():
            return ConsoleProblem(409, ProblemCode.OPERATION_REFUSED, "Refused", str(exc))
    raise TypeError(f"no problem mapping for {type(exc).__name__}")


#: Exception types :func:`problem_for` maps; the app installs one handler per root.
HANDLED: tuple[type[Exception], ...] = (
    ConsoleProblem,
    OperatorError,
    WorkflowError,
)
