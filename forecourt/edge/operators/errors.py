"""Exceptions of the operators package, each carrying what went wrong and never a secret.

::

    OperatorError
    ├── AuthenticationFailed      login refused: unknown user, wrong password or TOTP, replayed code
    │   └── AccountLocked         too many consecutive failures; carries ``locked_until``
    ├── SessionInvalid            unknown, expired, idle, or revoked session token
    ├── CsrfMismatch              a console form without this session's CSRF token
    ├── PermissionDenied          ``require()`` refused: role, dealer scope or inactive account
    ├── OperatorNotFound
    ├── UsernameTaken
    ├── PasswordPolicyViolation
    ├── TotpEnrolmentError        confirming an enrolment that does not exist or with a wrong code
    ├── TotpSecretUnreadable      a stored TOTP secret does not open under the edge's key
    ├── EnrolmentRefused          first sign-in with an unknown, used, expired or wrong code
    ├── PrivilegeChangePending    a reviewer-capable role awaits approval; the change is refused
    └── ReviewError
        ├── ReviewNotFound
        ├── SelfReviewRefused     the reviewer is the requester (four-eyes), whatever their role
        ├── SubjectReviewRefused  the reviewer is the account an operator_privilege request is about
        ├── ReviewerNotQualified  the reviewer's role may not decide this kind of request
        ├── ReviewExpired
        ├── ReviewStateConflict   the request is not in the state the operation needs
        └── StepUpFailed          the reviewer's fresh TOTP code was wrong or replayed

``AuthenticationFailed.reason`` is for logs and tests; what a login page shows must not tell an
attacker which of username, password or code was wrong.
"""

from __future__ import annotations

from datetime import datetime


class OperatorError(Exception):
    """Root of every refusal raised by the operators package."""


class AuthenticationFailed(OperatorError):
    """A login or step-up was refused; ``reason`` is a stable code, never the secret offered."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"authentication failed for {username!r}: {reason}")
        self.username = username
        self.reason = reason


class AccountLocked(AuthenticationFailed):
    """Too many consecutive failures: no login is even attempted until ``locked_until``."""

    def __init__(self, username: str, locked_until: datetime) -> None:
        super().__init__(username, "locked")
        self.locked_until = locked_until
        self.args = (f"account {username!r} is locked until {locked_until.isoformat()}",)


class SessionInvalid(OperatorError):
    """The session token does not open a live session; ``reason`` says why (for logs)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"session invalid: {reason}")
        self.reason = reason


class CsrfMismatch(OperatorError):
    """A state-changing console request did not carry this session's CSRF token."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"CSRF token mismatch for session {session_id}")
        self.session_id = session_id


class PermissionDenied(OperatorError):
    """``require()`` refused ``permission`` to ``operator_id``; ``reason`` is a stable code."""

    def __init__(self, operator_id: str, permission: str, reason: str) -> None:
        super().__init__(f"operator {operator_id} denied {permission}: {reason}")
        self.operator_id = operator_id
        self.permission = permission
        self.reason = reason


class OperatorNotFound(OperatorError):
    def __init__(self, operator_id: str) -> None:
        super().__init__(f"no operator {operator_id}")
        self.operator_id = operator_id


class UsernameTaken(OperatorError):
    def __init__(self, dealer_id: str, username: str) -> None:
        super().__init__(f"username {username!r} already exists at dealer {dealer_id}")
        self.dealer_id = dealer_id
        self.username = username


class PasswordPolicyViolation(OperatorError):
    """The new password breaks the policy; ``rule`` names which rule (never the password)."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"password refused: {rule}")
        self.rule = rule


class TotpEnrolmentError(OperatorError):
    def __init__(self, operator_id: str, reason: str) -> None:
        super().__init__(f"TOTP enrolment of operator {operator_id} refused: {reason}")
        self.operator_id = operator_id
        self.reason = reason


class TotpSecretUnreadable(OperatorError):
    """A stored TOTP secret does not open for ``operator_id``: tampered, moved, or another key.

    Raised by :mod:`forecourt.edge.operators.sealing`; the service turns it into the refusal of the
    operation at hand (a login, an enrolment) after logging it. ``reason`` is ``not_sealed``,
    ``malformed``, ``tag_mismatch`` or ``unknown_key`` (sealed under a key this edge no longer
    holds); neither the stored value nor the secret is ever carried.
    """

    def __init__(self, operator_id: str, reason: str) -> None:
        super().__init__(f"TOTP secret of operator {operator_id} unreadable: {reason}")
        self.operator_id = operator_id
        self.reason = reason


class EnrolmentRefused(OperatorError):
    """A first sign-in with an enrolment code was refused; ``reason`` is a stable code.

    Reasons: ``unknown``, ``wrong_code``, ``expired``, ``used`` (no code is pending), ``inactive``,
    ``locked``, ``wrong_totp``, ``totp_unreadable`` (the pending secret does not open under the
    edge's key: asking for a new one replaces it). A login page shows one message for all of them.
    """

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"enrolment of {username!r} refused: {reason}")
        self.username = username
        self.reason = reason


class PrivilegeChangePending(OperatorError):
    """The account's role awaits an ``operator_privilege`` review; no other change meanwhile."""

    def __init__(self, operator_id: str, detail: str) -> None:
        super().__init__(f"operator {operator_id}: {detail}")
        self.operator_id = operator_id


class ReviewError(OperatorError):
    """Root of dual-review refusals; every one names the request it concerns."""

    def __init__(self, request_id: str, message: str) -> None:
        super().__init__(f"review request {request_id}: {message}")
        self.request_id = request_id


class ReviewNotFound(ReviewError):
    def __init__(self, request_id: str) -> None:
        super().__init__(request_id, "not found")


class SelfReviewRefused(ReviewError):
    """Four-eyes: the requester may never decide their own request, whatever their role."""

    def __init__(self, request_id: str, operator_id: str) -> None:
        super().__init__(request_id, f"operator {operator_id} requested it and may not decide it")
        self.operator_id = operator_id


class SubjectReviewRefused(ReviewError):
    """The reviewer is the operator the request is about (their own privilege): never allowed."""

    def __init__(self, request_id: str, operator_id: str) -> None:
        super().__init__(request_id, f"operator {operator_id} is its subject and may not decide it")
        self.operator_id = operator_id


class ReviewerNotQualified(ReviewError):
    def __init__(self, request_id: str, operator_id: str, role: str, kind: str) -> None:
        super().__init__(request_id, f"role {role} of operator {operator_id} may not decide {kind}")
        self.operator_id = operator_id
        self.role = role
        self.kind = kind


class ReviewExpired(ReviewError):
    def __init__(self, request_id: str, expires_at: datetime) -> None:
        super().__init__(request_id, f"expired at {expires_at.isoformat()}")
        self.expires_at = expires_at


class ReviewStateConflict(ReviewError):
    """The request is in ``state``; the operation needed one of ``expected``."""

    def __init__(self, request_id: str, state: str, expected: tuple[str, ...]) -> None:
        super().__init__(request_id, f"is {state}, needs {' or '.join(expected)}")
        self.state = state
        self.expected = expected


class StepUpFailed(ReviewError):
    """The reviewer's fresh TOTP code (step-up) was refused; ``reason`` as for a login."""

    def __init__(self, request_id: str, operator_id: str, reason: str) -> None:
        super().__init__(request_id, f"step-up of operator {operator_id} refused: {reason}")
        self.operator_id = operator_id
        self.reason = reason
