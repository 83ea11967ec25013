"""OperatorService: accounts, login with password + TOTP, lock-out, sessions and step-up.

Each public method is one database transaction. A refused login still commits its bookkeeping (the
failure count, the lock) before the refusal is raised, so an attacker cannot reset the count by
making the request fail. Every refusal is logged with the operator and a reason code; passwords,
TOTP secrets, codes and session tokens never reach a log.

TOTP secrets are stored sealed (:mod:`forecourt.edge.operators.sealing`): every write seals with
the edge's TOTP key and every read opens with it. A secret that does not open (altered, copied
from another operator's row, another key) refuses the operation at hand with its usual error and
reason ``totp_unreadable``, logged as ``totp_secret_unreadable``; it is a fault of the box, not a
guess, so it does not count towards the operator's lock-out.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators import events, totp
from forecourt.edge.operators.authz import require
from forecourt.edge.operators.clock import Clock, system_clock
from forecourt.edge.operators.enrolment import code_digest, code_matches, new_enrolment_code
from forecourt.edge.operators.errors import (
    AccountLocked,
    AuthenticationFailed,
    CsrfMismatch,
    EnrolmentRefused,
    OperatorError,
    OperatorNotFound,
    PrivilegeChangePending,
    SessionInvalid,
    TotpEnrolmentError,
    TotpSecretUnreadable,
    UsernameTaken,
)
from forecourt.edge.operators.model import Operator
from forecourt.edge.operators.passwords import (
    UNUSABLE_PASSWORD,
    PasswordHashing,
    check_password_policy,
)
from forecourt.edge.operators.policy import OperatorPolicy, ReviewPolicy
from forecourt.edge.operators.privilege import (
    CHANGE_CREATE,
    CHANGE_PROMOTE,
    new_review_row,
    privilege_payload,
)
from forecourt.edge.operators.repository import (
    OperatorRepository,
    ReviewRepository,
    SessionRepository,
    to_operator,
)
from forecourt.edge.operators.reviews import REVIEWER_CAPABLE, ReviewKind
from forecourt.edge.operators.roles import Permission, Role
from forecourt.edge.operators.sealing import TotpKey
from forecourt.edge.operators.tokens import new_token, token_digest, tokens_equal
from forecourt.edge.operators.totp import TotpEnrolment
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOperator, EdgeSession

_log = get_logger("edge.operators")


class AlreadyBootstrapped(OperatorError):
    """The dealer already has operators; the first admin is created once only."""

    def __init__(self, dealer_id: str) -> None:
        super().__init__(f"dealer {dealer_id} already has operators")
        self.dealer_id = dealer_id


@dataclass(frozen=True, slots=True)
class NewOperator:
    """A created account and the one-time code its owner needs for their first sign-in.

    The creator hands ``enrolment_code`` to the new operator; it is never a password or a TOTP
    secret (the operator chooses and enrols those). ``review_id`` names the ``operator_privilege``
    request a reviewer-capable role waits on (None for technician and auditor). ``repr`` hides the
    code.
    """

    operator: Operator
    enrolment_code: str
    enrolment_expires_at: datetime
    review_id: str | None = None

    def __repr__(self) -> str:
        return f"NewOperator(operator={self.operator.id}, enrolment_code=[redacted])"


@dataclass(frozen=True, slots=True)
class FirstAdmin:
    """The dealer's first admin: created by the person at the box, who chose the password."""

    operator: Operator
    enrolment: TotpEnrolment


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A new session. ``session_token`` goes in an HttpOnly cookie, ``csrf_token`` in forms."""

    operator: Operator
    session_id: str
    session_token: str
    csrf_token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"LoginResult(operator={self.operator.id}, session_id={self.session_id})"


@dataclass(frozen=True, slots=True)
class AuthenticatedSession:
    """A live session resolved from its token, for one request."""

    operator: Operator
    session_id: str
    csrf_token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"AuthenticatedSession(operator={self.operator.id}, session_id={self.session_id})"


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a credential check decided, applied after the transaction commits."""

    error: OperatorError | None = None


class OperatorService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock = system_clock,
        policy: OperatorPolicy | None = None,
        passwords: PasswordHashing | None = None,
        review_policy: ReviewPolicy | None = None,
        totp_key: TotpKey | None = None,
    ) -> None:
        self._sessions = sessions
        self._totp_key = totp_key or TotpKey.for_sessions(sessions)
        self._clock = clock
        self.policy = policy or OperatorPolicy()
        self._passwords = passwords or PasswordHashing()
        self._review_policy = review_policy or ReviewPolicy()

    # -- accounts -------------------------------------------------------------------------------

    def create_operator(
        self,
        actor: Operator,
        *,
        dealer_id: str,
        username: str,
        display_name: str,
        role: Role,
        reason: str = "new operator",
    ) -> NewOperator:
        """Create an account at ``dealer_id`` (``operator.manage`` there) with an enrolment code.

        A reviewer-capable role opens an ``operator_privilege`` review in the same transaction; the
        account stays inactive until another qualified operator approves it.
        """
        require(actor, Permission.OPERATOR_MANAGE, dealer_id)
        now = self._clock()
        code = new_enrolment_code()
        elevated = role in REVIEWER_CAPABLE
        row = self._new_row(dealer_id, username, display_name, role, now)
        row.enrolment_code_sha256 = code_digest(code)
        row.enrolment_expires_at = now + self.policy.enrolment_code_ttl
        row.active = not elevated
        row.awaiting_approval = elevated
        row.pending_role = role.value if elevated else None
        review_id: str | None = None
        with self._sessions.begin() as s:
            repo = OperatorRepository(s)
            if repo.exists(dealer_id, username):
                raise UsernameTaken(dealer_id, username)
            repo.add(row)
            events.operator_event(s, events.OPERATOR_CREATED, now, actor.id, row, role=role.value)
            if elevated:
                review_id = self._open_privilege_review(s, actor, row, role, CHANGE_CREATE, reason)
            operator = to_operator(row)
        _log.info(
            "operator_created",
            operator_id=operator.id,
            dealer_id=dealer_id,
            role=role.value,
            by=actor.id,
            review_id=review_id,
        )
        return NewOperator(operator, code, now + self.policy.enrolment_code_ttl, review_id)

    def bootstrap_admin(
        self, dealer_id: str, username: str, display_name: str, password: str
    ) -> FirstAdmin:
        """Create the dealer's first ``dealer_admin``; refused once the dealer has any operator.

        The person at the box chooses the password and enrols the TOTP shown (confirmed by their
        first code); nobody else is involved, so there is no creator to keep the secrets from and
        no second operator to review the role yet.
        """
        check_password_policy(password, username)
        now = self._clock()
        secret = totp.new_secret()
        row = self._new_row(dealer_id, username, display_name, Role.DEALER_ADMIN, now)
        row.password_hash = self._passwords.hash(password)
        row.totp_pending_secret = self._totp_key.seal(row.id, secret)
        with self._sessions.begin() as s:
            repo = OperatorRepository(s)
            if repo.count_for_dealer(dealer_id) > 0:
                raise AlreadyBootstrapped(dealer_id)
            repo.add(row)
            events.operator_event(
                s, events.OPERATOR_CREATED, now, row.id, row, role=Role.DEALER_ADMIN.value
            )
            operator = to_operator(row)
        _log.info("operator_bootstrapped", operator_id=operator.id, dealer_id=dealer_id)
        enrolment = totp.enrolment_for(secret, username, dealer_id, self.policy.totp_issuer)
        return FirstAdmin(operator, enrolment)

    def _new_row(
        self, dealer_id: str, username: str, display_name: str, role: Role, now: datetime
    ) -> EdgeOperator:
        return EdgeOperator(
            id=str(uuid.uuid4()),
            dealer_id=dealer_id,
            username=username,
            display_name=display_name,
            role=role.value,
            password_hash=UNUSABLE_PASSWORD,
            totp_secret=None,
            totp_pending_secret=None,
            totp_last_step=None,
            failed_attempts=0,
            locked_until=None,
            active=True,
            created_at=now,
            password_changed_at=now,
            last_login_at=None,
            enrolment_code_sha256=None,
            enrolment_expires_at=None,
            pending_role=None,
            awaiting_approval=False,
        )

    def _open_privilege_review(  # noqa: PLR0917 - internal, one call site per change kind
        self,
        s: Session,
        actor: Operator,
        subject: EdgeOperator,
        role: Role,
        change: str,
        reason: str,
    ) -> str:
        review = new_review_row(
            kind=ReviewKind.OPERATOR_PRIVILEGE,
            payload=privilege_payload(subject, role, change),
            dealer_id=subject.dealer_id,
            requester_id=actor.id,
            reason=reason,
            now=self._clock(),
            ttl=self._review_policy.request_ttl,
        )
        ReviewRepository(s).add(review)
        events.review_event(s, events.REVIEW_REQUESTED, review, actor.id)
        _log.info(
            "review_requested",
            request_id=review.id,
            kind=review.kind,
            dealer_id=subject.dealer_id,
            requester_id=actor.id,
            payload_sha256=review.payload_sha256,
        )
        return review.id

    def get(self, operator_id: str) -> Operator:
        with self._sessions.begin() as s:
            row = OperatorRepository(s).get(operator_id)
            if row is None:
                raise OperatorNotFound(operator_id)
            return to_operator(row)

    def list_operators(self, actor: Operator, dealer_id: str) -> list[Operator]:
        require(actor, Permission.OPERATOR_MANAGE, dealer_id)
        with self._sessions.begin() as s:
            return [to_operator(r) for r in OperatorRepository(s).list_for_dealer(dealer_id)]

    def set_active(self, actor: Operator, operator_id: str, active: bool) -> Operator:
        """Enable or disable an account; disabling ends its sessions at once.

        An account whose role still awaits approval cannot be enabled: that would skip the review.
        """
        now = self._clock()
        with self._sessions.begin() as s:
            row = self._managed_row(s, actor, operator_id)
            if active and row.awaiting_approval:
                raise PrivilegeChangePending(operator_id, "its role awaits a second operator")
            row.active = active
            if not active:
                SessionRepository(s).revoke_all_for(row.id, now, "deactivated")
            kind = events.OPERATOR_ACTIVATED if active else events.OPERATOR_DEACTIVATED
            events.operator_event(s, kind, now, actor.id, row)
            result = to_operator(row)
        _log.info("operator_active_set", operator_id=operator_id, active=active, by=actor.id)
        return result

    def set_role(
        self, actor: Operator, operator_id: str, role: Role, *, reason: str = "role change"
    ) -> Operator:
        """Change a role; sessions end so that no page keeps showing the old powers.

        A reviewer-capable role is not given here: an ``operator_privilege`` review is opened and
        the account keeps its role until another qualified operator approves (see
        :mod:`forecourt.edge.operators.privilege`). Lowering a role needs no second operator.
        """
        if actor.id == operator_id:
            raise OperatorError("an operator may not change their own role")
        now = self._clock()
        with self._sessions.begin() as s:
            row = self._managed_row(s, actor, operator_id)
            if row.pending_role is not None:
                raise PrivilegeChangePending(operator_id, f"{row.pending_role} awaits review")
            if role in REVIEWER_CAPABLE and role.value != row.role:
                row.pending_role = role.value
                self._open_privilege_review(s, actor, row, role, CHANGE_PROMOTE, reason)
            else:
                row.role = role.value
                SessionRepository(s).revoke_all_for(row.id, now, "role_changed")
                events.operator_event(
                    s, events.OPERATOR_ROLE_CHANGED, now, actor.id, row, role=role.value
                )
            result = to_operator(row)
        _log.info(
            "operator_role_set",
            operator_id=operator_id,
            role=role.value,
            pending=result.pending_role is not None,
            by=actor.id,
        )
        return result

    def unlock(self, actor: Operator, operator_id: str) -> Operator:
        """Lift a lock-out before its period ends (``operator.manage``)."""
        with self._sessions.begin() as s:
            row = self._managed_row(s, actor, operator_id)
            row.failed_attempts = 0
            row.locked_until = None
            result = to_operator(row)
        _log.info("operator_unlocked", operator_id=operator_id, by=actor.id)
        return result

    def _managed_row(self, s: Session, actor: Operator, operator_id: str) -> EdgeOperator:
        row = OperatorRepository(s).get(operator_id, for_update=True)
        if row is None:
            raise OperatorNotFound(operator_id)
        require(actor, Permission.OPERATOR_MANAGE, row.dealer_id)
        return row

    # -- first sign-in with an enrolment code -------------------------------------------------

    def begin_enrolment(self, dealer_id: str, username: str, code: str) -> TotpEnrolment:
        """Check the one-time code and give the new operator a TOTP secret to scan (QR).

        The code stays valid (it is spent by :meth:`complete_enrolment`); asking again replaces the
        pending secret. A wrong code counts towards the lock-out like a wrong password.
        """
        now = self._clock()
        secret = totp.new_secret()
        refusal: EnrolmentRefused | None = None
        with self._sessions.begin() as s:
            row = OperatorRepository(s).by_username(dealer_id, username, for_update=True)
            refusal = self._check_enrolment_code(s, row, username, code, now)
            if refusal is None:
                assert row is not None
                row.totp_pending_secret = self._totp_key.seal(row.id, secret)
        if refusal is not None:
            raise refusal
        _log.info("enrolment_started", dealer_id=dealer_id, username=username)
        return totp.enrolment_for(secret, username, dealer_id, self.policy.totp_issuer)

    def complete_enrolment(
        self, dealer_id: str, username: str, code: str, password: str, totp_code: str
    ) -> Operator:
        """Spend the one-time code: set the operator's own password and confirm their TOTP.

        ``totp_code`` must come from the secret :meth:`begin_enrolment` gave; its time step is
        consumed like a login code. After this the code is gone and the account signs in normally.
        """
        check_password_policy(password, username)
        now = self._clock()
        refusal: EnrolmentRefused | None = None
        result: Operator | None = None
        with self._sessions.begin() as s:
            row = OperatorRepository(s).by_username(dealer_id, username, for_update=True)
            refusal = self._check_enrolment_code(s, row, username, code, now)
            if refusal is None:
                assert row is not None
                pending = self._open(row, row.totp_pending_secret)
                step = (
                    totp.match_step(pending, totp_code, now, None)
                    if isinstance(pending, str)
                    else None
                )
                if isinstance(pending, TotpSecretUnreadable):
                    _log.warning("enrolment_refused", operator_id=row.id, reason="totp_unreadable")
                    refusal = EnrolmentRefused(username, "totp_unreadable")
                elif step is None:
                    refusal = self._enrolment_failure(s, row, "wrong_totp", now)
                else:
                    row.totp_secret, row.totp_pending_secret = row.totp_pending_secret, None
                    row.totp_last_step = step
                    row.password_hash = self._passwords.hash(password)
                    row.password_changed_at = now
                    row.enrolment_code_sha256 = row.enrolment_expires_at = None
                    row.failed_attempts = 0
                    events.operator_event(s, events.OPERATOR_ENROLLED, now, row.id, row)
                    result = to_operator(row)
        if refusal is not None:
            raise refusal
        assert result is not None
        _log.info("enrolment_completed", operator_id=result.id)
        return result

    def _check_enrolment_code(
        self, s: Session, row: EdgeOperator | None, username: str, code: str, now: datetime
    ) -> EnrolmentRefused | None:
        if row is None:
            _log.warning("enrolment_refused", username=username, reason="unknown")
            return EnrolmentRefused(username, "unknown")
        if row.locked_until is not None and row.locked_until > now:
            _log.warning("enrolment_refused", operator_id=row.id, reason="locked")
            return EnrolmentRefused(username, "locked")
        if row.enrolment_code_sha256 is None or row.enrolment_expires_at is None:
            _log.warning("enrolment_refused", operator_id=row.id, reason="used")
            return EnrolmentRefused(username, "used")
        if not code_matches(row.enrolment_code_sha256, code):
            return self._enrolment_failure(s, row, "wrong_code", now)
        if now >= row.enrolment_expires_at:
            _log.warning("enrolment_refused", operator_id=row.id, reason="expired")
            return EnrolmentRefused(username, "expired")
        return None

    def _enrolment_failure(
        self, s: Session, row: EdgeOperator, reason: str, now: datetime
    ) -> EnrolmentRefused:
        outcome = self._fail(s, row, f"enrolment_{reason}", now)
        locked = isinstance(outcome.error, AccountLocked)
        _log.warning("enrolment_refused", operator_id=row.id, reason=reason)
        return EnrolmentRefused(row.username, "locked" if locked else reason)

    def verify_credentials(
        self, dealer_id: str, username: str, password: str, totp_code: str
    ) -> Operator:
        """Password + TOTP without opening a session: a one-shot command run at the box (CLI).

        Counts towards the lock-out and consumes the code's time step exactly like a login.
        """
        now = self._clock()
        outcome = _Outcome()
        operator: Operator | None = None
        with self._sessions.begin() as s:
            row = OperatorRepository(s).by_username(dealer_id, username, for_update=True)
            if row is None:
                self._passwords.verify_dummy(password)
                _log.warning("login_failed", dealer_id=dealer_id, reason="unknown_user")
                outcome = _Outcome(AuthenticationFailed(username, "unknown_user"))
            else:
                outcome = self._check_credentials(s, row, password, totp_code, now)
                operator = to_operator(row)
        if outcome.error is not None:
            raise outcome.error
        assert operator is not None
        _log.info("credentials_verified", operator_id=operator.id)
        return operator

    # -- TOTP enrolment -------------------------------------------------------------------------

    def begin_totp_enrolment(self, operator: Operator) -> TotpEnrolment:
        """A new pending secret for the operator; the current one stays valid until confirmed."""
        secret = totp.new_secret()
        with self._sessions.begin() as s:
            row = OperatorRepository(s).get(operator.id, for_update=True)
            if row is None:
                raise OperatorNotFound(operator.id)
            row.totp_pending_secret = self._totp_key.seal(row.id, secret)
            username, dealer_id = row.username, row.dealer_id
        _log.info("totp_enrolment_started", operator_id=operator.id)
        return totp.enrolment_for(secret, username, dealer_id, self.policy.totp_issuer)

    def confirm_totp_enrolment(self, operator: Operator, code: str) -> None:
        """Make the pending secret the operator's second factor, proven by a first valid code."""
        now = self._clock()
        with self._sessions.begin() as s:
            row = OperatorRepository(s).get(operator.id, for_update=True)
            if row is None:
                raise OperatorNotFound(operator.id)
            pending = self._open(row, row.totp_pending_secret)
            if pending is None:
                raise TotpEnrolmentError(operator.id, "no enrolment in progress")
            if isinstance(pending, TotpSecretUnreadable):
                raise TotpEnrolmentError(operator.id, "stored secret unreadable: start again")
            step = totp.match_step(pending, code, now, row.totp_last_step)
            if step is not None:
                row.totp_secret = row.totp_pending_secret
                row.totp_pending_secret = None
                row.totp_last_step = step
        if step is None:
            _log.warning("totp_enrolment_refused", operator_id=operator.id, reason="wrong_code")
            raise TotpEnrolmentError(operator.id, "wrong code")
        _log.info("totp_enrolment_confirmed", operator_id=operator.id)

    # -- login and step-up ----------------------------------------------------------------------

    def login(
        self,
        dealer_id: str,
        username: str,
        password: str,
        totp_code: str,
        *,
        remote_addr: str | None = None,
    ) -> LoginResult:
        """Check password then TOTP; on success open a session, on failure count towards a lock.

        A locked account is refused before any credential is looked at. A valid code from a
        pending enrolment confirms it (the first login of a new operator).
        """
        now = self._clock()
        result: LoginResult | None = None
        outcome = _Outcome()
        with self._sessions.begin() as s:
            row = OperatorRepository(s).by_username(dealer_id, username, for_update=True)
            if row is None:
                self._passwords.verify_dummy(password)
                _log.warning(
                    "login_failed", dealer_id=dealer_id, username=username, reason="unknown_user"
                )
                outcome = _Outcome(AuthenticationFailed(username, "unknown_user"))
            else:
                outcome = self._check_credentials(s, row, password, totp_code, now)
                if outcome.error is None:
                    result = self._open_session(s, row, now, remote_addr)
        if outcome.error is not None:
            raise outcome.error
        assert result is not None
        _log.info("login_succeeded", operator_id=result.operator.id, session_id=result.session_id)
        return result

    def verify_step_up(self, operator: Operator, code: str) -> None:
        """A fresh TOTP code for a sensitive action; wrong codes count towards the lock-out."""
        now = self._clock()
        with self._sessions.begin() as s:
            row = OperatorRepository(s).get(operator.id, for_update=True)
            if row is None:
                raise OperatorNotFound(operator.id)
            outcome = self._check_totp_only(s, row, code, now)
        if outcome.error is not None:
            raise outcome.error
        _log.info("step_up_succeeded", operator_id=operator.id)

    def _check_credentials(
        self, s: Session, row: EdgeOperator, password: str, code: str, now: datetime
    ) -> _Outcome:
        refused = self._refuse_locked_or_inactive(row, now)
        if refused is not None:
            return refused
        if not self._passwords.verify(row.password_hash, password):
            return self._fail(s, row, "password", now)
        outcome = self._consume_code(s, row, code, now)
        if outcome.error is None and self._passwords.needs_rehash(row.password_hash):
            row.password_hash = self._passwords.hash(password)
            _log.info("password_rehashed", operator_id=row.id)
        return outcome

    def _check_totp_only(self, s: Session, row: EdgeOperator, code: str, now: datetime) -> _Outcome:
        refused = self._refuse_locked_or_inactive(row, now)
        if refused is not None:
            return refused
        if row.totp_secret is None:
            return self._fail(s, row, "totp_not_enrolled", now)
        return self._consume_code(s, row, code, now)

    def _refuse_locked_or_inactive(self, row: EdgeOperator, now: datetime) -> _Outcome | None:
        if row.locked_until is not None:
            if row.locked_until > now:
                _log.warning("login_refused_locked", operator_id=row.id, until=row.locked_until)
                return _Outcome(AccountLocked(row.username, row.locked_until))
            row.locked_until = None  # the cooling-off period is over: a fresh count starts
            row.failed_attempts = 0
        if not row.active:
            _log.warning("login_failed", operator_id=row.id, reason="inactive")
            return _Outcome(AuthenticationFailed(row.username, "inactive"))
        return None

    def _consume_code(self, s: Session, row: EdgeOperator, code: str, now: datetime) -> _Outcome:
        stored = row.totp_secret or row.totp_pending_secret
        secret = self._open(row, stored)
        if secret is None:
            return self._fail(s, row, "totp_not_enrolled", now)
        if isinstance(secret, TotpSecretUnreadable):
            _log.warning("login_failed", operator_id=row.id, reason="totp_unreadable")
            return _Outcome(AuthenticationFailed(row.username, "totp_unreadable"))
        step = totp.match_step(secret, code, now, row.totp_last_step)
        if step is None:
            replayed = totp.match_step(secret, code, now, None) is not None
            return self._fail(s, row, "totp_replayed" if replayed else "totp", now)
        row.totp_last_step = step
        if row.totp_secret is None:
            row.totp_secret, row.totp_pending_secret = stored, None
            _log.info("totp_enrolment_confirmed", operator_id=row.id)
        row.failed_attempts = 0
        return _Outcome()

    def _open(self, row: EdgeOperator, stored: str | None) -> str | TotpSecretUnreadable | None:
        """The clear secret of ``stored`` (a column of ``row``), None if empty, or why it is not.

        The refusal is returned, not raised, so the caller refuses with its own error and the
        transaction still commits what it must; it is logged here, once, without the value.
        """
        if stored is None:
            return None
        try:
            return self._totp_key.open(row.id, stored)
        except TotpSecretUnreadable as exc:
            _log.error("totp_secret_unreadable", operator_id=row.id, reason=exc.reason)
            return exc

    def _fail(self, s: Session, row: EdgeOperator, reason: str, now: datetime) -> _Outcome:
        row.failed_attempts += 1
        _log.warning(
            "login_failed", operator_id=row.id, reason=reason, consecutive=row.failed_attempts
        )
        if row.failed_attempts >= self.policy.max_failed_attempts:
            row.locked_until = now + self.policy.lockout_period
            revoked = SessionRepository(s).revoke_all_for(row.id, now, "locked")
            events.operator_event(s, events.OPERATOR_LOCKED, now, None, row)
            _log.warning(
                "operator_locked",
                operator_id=row.id,
                until=row.locked_until,
                failures=row.failed_attempts,
                sessions_revoked=revoked,
            )
            return _Outcome(AccountLocked(row.username, row.locked_until))
        return _Outcome(AuthenticationFailed(row.username, reason))

    # -- sessions -------------------------------------------------------------------------------

    def _open_session(
        self, s: Session, row: EdgeOperator, now: datetime, remote_addr: str | None
    ) -> LoginResult:
        token = new_token()
        session = EdgeSession(
            id=str(uuid.uuid4()),
            operator_id=row.id,
            token_sha256=token_digest(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.session_lifetime,
            revoked_at=None,
            revoked_reason=None,
            remote_addr=remote_addr,
        )
        SessionRepository(s).add(session)
        row.last_login_at = now
        return LoginResult(
            operator=to_operator(row),
            session_id=session.id,
            session_token=token,
            csrf_token=session.csrf_token,
            expires_at=session.expires_at,
        )

    def authenticate(self, session_token: str) -> AuthenticatedSession:
        """Resolve a session token to its live session, refreshing its idle timer."""
        now = self._clock()
        reason: str | None = None
        result: AuthenticatedSession | None = None
        with self._sessions.begin() as s:
            session = SessionRepository(s).by_token_digest(token_digest(session_token))
            row = None if session is None else OperatorRepository(s).get(session.operator_id)
            if session is None or row is None:
                reason = "unknown"
            elif session.revoked_at is not None:
                reason = "revoked"
            elif now >= session.expires_at:
                reason = "expired"
            elif now - session.last_seen_at >= self.policy.session_idle_timeout:
                reason = "idle"
                session.revoked_at, session.revoked_reason = now, "idle"
            elif not row.active:
                reason = "inactive"
            elif row.locked_until is not None and row.locked_until > now:
                reason = "locked"
            else:
                session.last_seen_at = now
                result = AuthenticatedSession(
                    operator=to_operator(row),
                    session_id=session.id,
                    csrf_token=session.csrf_token,
                    expires_at=session.expires_at,
                )
        if result is None:
            assert reason is not None
            _log.info("session_refused", reason=reason)
            raise SessionInvalid(reason)
        return result

    @staticmethod
    def check_csrf(session: AuthenticatedSession, presented: str | None) -> None:
        """Refuse a state-changing console request whose form lacks this session's CSRF token."""
        if presented is None or not tokens_equal(session.csrf_token, presented):
            _log.warning("csrf_refused", session_id=session.session_id)
            raise CsrfMismatch(session.session_id)

    def logout(self, session_token: str) -> None:
        """End the session; unknown or already ended tokens are ignored (logout is idempotent)."""
        now = self._clock()
        with self._sessions.begin() as s:
            session = SessionRepository(s).by_token_digest(token_digest(session_token))
            if session is None or session.revoked_at is not None:
                return
            session.revoked_at, session.revoked_reason = now, "logout"
            session_id = session.id
        _log.info("logout", session_id=session_id)

    def change_password(self, operator: Operator, current_password: str, new_password: str) -> None:
        """Change one's own password; every session of the operator ends, this one included."""
        now = self._clock()
        check_password_policy(new_password, operator.username)
        outcome = _Outcome()
        with self._sessions.begin() as s:
            row = OperatorRepository(s).get(operator.id, for_update=True)
            if row is None:
                raise OperatorNotFound(operator.id)
            outcome = self._refuse_locked_or_inactive(row, now) or _Outcome()
            if outcome.error is None and not self._passwords.verify(
                row.password_hash, current_password
            ):
                outcome = self._fail(s, row, "password", now)
            if outcome.error is None:
                row.password_hash = self._passwords.hash(new_password)
                row.password_changed_at = now
                revoked = SessionRepository(s).revoke_all_for(row.id, now, "password_changed")
        if outcome.error is not None:
            raise outcome.error
        _log.info("password_changed", operator_id=operator.id, sessions_revoked=revoked)
