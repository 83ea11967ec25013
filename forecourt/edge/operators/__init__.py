"""Edge operators: accounts, password + TOTP login, lock-out, sessions, roles, dual review.

Public API (everything else is internal)::

    require(operator, permission, dealer_id)          # the one server-side permission check
    OperatorService(sessionmaker, clock=, policy=, passwords=)
        .login / .authenticate / .check_csrf / .logout / .change_password / .verify_step_up
        .create_operator -> NewOperator (one-time enrolment code; reviewer-capable roles wait
                            for an operator_privilege review)
        .begin_enrolment / .complete_enrolment      # first sign-in: own password, own TOTP
        .verify_credentials                         # password + TOTP for a one-shot CLI command
        .set_role / .set_active / .unlock / .begin_totp_enrolment / .confirm_totp_enrolment
    ReviewService(sessionmaker, operator_service, clock=, policy=)
        .request / .approve / .reject / .mark_executed / .get / .list_for_dealer / .expire_due
    bootstrap_first_admin(operator_service, dealer_id) -> BootstrapCredentials
"""

from __future__ import annotations

from forecourt.edge.operators.authz import require
from forecourt.edge.operators.bootstrap import BootstrapCredentials, bootstrap_first_admin
from forecourt.edge.operators.clock import Clock, system_clock
from forecourt.edge.operators.errors import (
    AccountLocked,
    AuthenticationFailed,
    CsrfMismatch,
    EnrolmentRefused,
    OperatorError,
    OperatorNotFound,
    PasswordPolicyViolation,
    PermissionDenied,
    PrivilegeChangePending,
    ReviewerNotQualified,
    ReviewError,
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
from forecourt.edge.operators.model import Operator
from forecourt.edge.operators.passwords import PasswordHashing
from forecourt.edge.operators.policy import OperatorPolicy, ReviewPolicy
from forecourt.edge.operators.review_service import ReviewService
from forecourt.edge.operators.reviews import (
    APPROVER_ROLES,
    REQUEST_PERMISSION,
    REVIEWER_CAPABLE,
    Review,
    ReviewKind,
    ReviewState,
)
from forecourt.edge.operators.roles import PERMISSION_MATRIX, Permission, Role, permissions_of
from forecourt.edge.operators.service import (
    AlreadyBootstrapped,
    AuthenticatedSession,
    FirstAdmin,
    LoginResult,
    NewOperator,
    OperatorService,
)
from forecourt.edge.operators.totp import TotpEnrolment

__all__ = [
    "APPROVER_ROLES",
    "PERMISSION_MATRIX",
    "REQUEST_PERMISSION",
    "REVIEWER_CAPABLE",
    "AccountLocked",
    "AlreadyBootstrapped",
    "AuthenticatedSession",
    "AuthenticationFailed",
    "BootstrapCredentials",
    "Clock",
    "CsrfMismatch",
    "EnrolmentRefused",
    "FirstAdmin",
    "LoginResult",
    "NewOperator",
    "Operator",
    "OperatorError",
    "OperatorNotFound",
    "OperatorPolicy",
    "OperatorService",
    "PasswordHashing",
    "PasswordPolicyViolation",
    "Permission",
    "PermissionDenied",
    "PrivilegeChangePending",
    "Review",
    "ReviewError",
    "ReviewExpired",
    "ReviewKind",
    "ReviewNotFound",
    "ReviewPolicy",
    "ReviewService",
    "ReviewState",
    "ReviewStateConflict",
    "ReviewerNotQualified",
    "Role",
    "SelfReviewRefused",
    "SessionInvalid",
    "StepUpFailed",
    "SubjectReviewRefused",
    "TotpEnrolment",
    "TotpEnrolmentError",
    "UsernameTaken",
    "bootstrap_first_admin",
    "permissions_of",
    "require",
    "system_clock",
]
