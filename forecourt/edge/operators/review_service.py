"""ReviewService: request, approve or reject, and execute-once of dual-review requests.

The rules are in :mod:`forecourt.edge.operators.reviews`. Approval runs in three steps so that a
wrong step-up code is counted (and can lock the reviewer) even though the approval fails:
validate the request and the reviewer; consume the reviewer's TOTP code; then move the request
``pending → approved`` with a conditional update that a concurrent decision or expiry defeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators import events, privilege
from forecourt.edge.operators.authz import require
from forecourt.edge.operators.clock import Clock, system_clock
from forecourt.edge.operators.errors import (
    AuthenticationFailed,
    OperatorError,
    ReviewerNotQualified,
    ReviewExpired,
    ReviewNotFound,
    ReviewStateConflict,
    SelfReviewRefused,
    StepUpFailed,
    SubjectReviewRefused,
)
from forecourt.edge.operators.model import Operator
from forecourt.edge.operators.policy import ReviewPolicy
from forecourt.edge.operators.privilege import new_review_row
from forecourt.edge.operators.repository import ReviewRepository, to_review
from forecourt.edge.operators.reviews import (
    APPROVER_ROLES,
    REQUEST_PERMISSION,
    SUBJECT_KEY,
    Review,
    ReviewKind,
    ReviewState,
)
from forecourt.edge.operators.roles import Permission
from forecourt.edge.operators.service import OperatorService
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeReviewRequest

_log = get_logger("edge.operators.review")


class ReviewService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        operators: OperatorService,
        *,
        clock: Clock = system_clock,
        policy: ReviewPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self._operators = operators
        self._clock = clock
        self.policy = policy or ReviewPolicy()

    def request(
        self,
        requester: Operator,
        kind: ReviewKind,
        payload: Mapping[str, Any],
        *,
        dealer_id: str,
        reason: str,
    ) -> Review:
        """Open a request for ``kind`` at ``dealer_id``; the requester needs its permission."""
        require(requester, REQUEST_PERMISSION[kind], dealer_id)
        if kind is ReviewKind.OPERATOR_PRIVILEGE:
            raise OperatorError("operator_privilege requests come from account changes only")
        row = new_review_row(
            kind=kind,
            payload=payload,
            dealer_id=dealer_id,
            requester_id=requester.id,
            reason=reason,
            now=self._clock(),
            ttl=self.policy.request_ttl,
        )
        with self._sessions.begin() as s:
            ReviewRepository(s).add(row)
            events.review_event(s, events.REVIEW_REQUESTED, row, requester.id)
            review = to_review(row)
        _log.info(
            "review_requested",
            request_id=review.id,
            kind=kind.value,
            dealer_id=dealer_id,
            requester_id=requester.id,
            payload_sha256=review.payload_sha256,
        )
        return review

    def get(self, viewer: Operator, request_id: str) -> Review:
        with self._sessions.begin() as s:
            row = ReviewRepository(s).get(request_id)
            if row is None:
                raise ReviewNotFound(request_id)
            require(viewer, Permission.REVIEW_READ, row.dealer_id)
            return to_review(row)

    def list_for_dealer(
        self, viewer: Operator, dealer_id: str, state: ReviewState | None = None
    ) -> list[Review]:
        require(viewer, Permission.REVIEW_READ, dealer_id)
        self.expire_due(dealer_id)
        with self._sessions.begin() as s:
            return [to_review(r) for r in ReviewRepository(s).list_for_dealer(dealer_id, state)]

    def expire_due(self, dealer_id: str | None = None) -> int:
        """Mark pending requests past their deadline as expired; returns how many."""
        with self._sessions.begin() as s:
            count = ReviewRepository(s).expire_due(self._clock(), dealer_id)
        if count:
            _log.info("reviews_expired", count=count, dealer_id=dealer_id)
        return count

    def approve(
        self, reviewer: Operator, request_id: str, totp_code: str, *, note: str | None = None
    ) -> Review:
        """Approve as a qualified second operator, proven by a fresh TOTP code (step-up)."""
        self._check_decidable(reviewer, request_id)
        try:
            self._operators.verify_step_up(reviewer, totp_code)
        except AuthenticationFailed as exc:
            self._refused(request_id, reviewer, f"step_up_{exc.reason}")
            raise StepUpFailed(request_id, reviewer.id, exc.reason) from exc
        return self._decide(reviewer, request_id, ReviewState.APPROVED, note)

    def reject(self, reviewer: Operator, request_id: str, *, note: str) -> Review:
        """Reject as a qualified second operator (no step-up: refusing is the safe direction)."""
        self._check_decidable(reviewer, request_id)
        return self._decide(reviewer, request_id, ReviewState.REJECTED, note)

    def mark_executed(self, executor: Operator, request_id: str) -> bool:
        """Record that the approved operation ran; True for the first call only.

        The caller runs the operation only when this returns True, so a retried or concurrent
        execution of the same approval does nothing twice. A request that is not approved (pending,
        rejected, expired) raises :class:`ReviewStateConflict`.
        """
        now = self._clock()
        with self._sessions.begin() as s:
            repo = ReviewRepository(s)
            row = repo.get(request_id)
            if row is None:
                raise ReviewNotFound(request_id)
            require(executor, REQUEST_PERMISSION[ReviewKind(row.kind)], row.dealer_id)
            moved = repo.transition(
                request_id,
                ReviewState.APPROVED,
                ReviewState.EXECUTED,
                executor_id=executor.id,
                executed_at=now,
            )
            s.refresh(row)
            state = ReviewState(row.state)
            if moved:
                events.review_event(s, events.REVIEW_EXECUTED, row, executor.id, now)
        if moved:
            _log.info("review_executed", request_id=request_id, executor_id=executor.id)
            return True
        if state is ReviewState.EXECUTED:
            _log.info("review_execution_repeated", request_id=request_id, executor_id=executor.id)
            return False
        self._refused(request_id, executor, f"execute_{state.value}")
        raise ReviewStateConflict(request_id, state.value, (ReviewState.APPROVED.value,))

    # -- internals ------------------------------------------------------------------------------

    def _check_decidable(self, reviewer: Operator, request_id: str) -> None:
        """Refuse unless the request is pending, unexpired, and ``reviewer`` may decide it."""
        now = self._clock()
        error: OperatorError | None = None
        with self._sessions.begin() as s:
            repo = ReviewRepository(s)
            row = repo.get(request_id, for_update=True)
            if row is None:
                raise ReviewNotFound(request_id)
            require(reviewer, Permission.REVIEW_APPROVE, row.dealer_id)
            kind = ReviewKind(row.kind)
            if row.state == ReviewState.PENDING.value and row.expires_at <= now:
                repo.transition(request_id, ReviewState.PENDING, ReviewState.EXPIRED)
                error = ReviewExpired(request_id, row.expires_at)
            elif row.state != ReviewState.PENDING.value:
                error = ReviewStateConflict(request_id, row.state, (ReviewState.PENDING.value,))
            elif row.requester_id == reviewer.id:
                error = SelfReviewRefused(request_id, reviewer.id)
            elif row.payload.get(SUBJECT_KEY) == reviewer.id:
                error = SubjectReviewRefused(request_id, reviewer.id)
            elif reviewer.role not in APPROVER_ROLES[kind]:
                error = ReviewerNotQualified(request_id, reviewer.id, reviewer.role.value, kind)
        if error is not None:
            self._refused(request_id, reviewer, type(error).__name__)
            raise error

    def _decide(
        self, reviewer: Operator, request_id: str, to: ReviewState, note: str | None
    ) -> Review:
        now = self._clock()
        with self._sessions.begin() as s:
            repo = ReviewRepository(s)
            moved = repo.transition(
                request_id,
                ReviewState.PENDING,
                to,
                not_expired_at=now,
                reviewer_id=reviewer.id,
                decided_at=now,
                decision_note=note,
            )
            row = repo.get(request_id)
            assert row is not None
            s.refresh(row)
            if moved:
                self._apply(s, row, reviewer, to, now)
            review = to_review(row)
        if not moved:
            # Someone decided first, or the deadline passed between the checks and now.
            self._refused(request_id, reviewer, f"decide_{review.state.value}")
            if review.state is ReviewState.PENDING:
                raise ReviewExpired(request_id, review.expires_at)
            raise ReviewStateConflict(request_id, review.state.value, (ReviewState.PENDING.value,))
        _log.info(
            f"review_{to.value}",
            request_id=request_id,
            kind=review.kind.value,
            requester_id=review.requester_id,
            reviewer_id=reviewer.id,
            payload_sha256=review.payload_sha256,
        )
        return review

    @staticmethod
    def _apply(
        s: Session, row: EdgeReviewRequest, reviewer: Operator, to: ReviewState, now: datetime
    ) -> None:
        """Ledger the decision; an ``operator_privilege`` decision takes effect at once."""
        decided = events.REVIEW_APPROVED if to is ReviewState.APPROVED else events.REVIEW_REJECTED
        events.review_event(s, decided, row, reviewer.id, now)
        if row.kind != ReviewKind.OPERATOR_PRIVILEGE.value:
            return
        if to is ReviewState.REJECTED:
            privilege.apply_rejected(s, row)
            return
        try:
            privilege.apply_approved(s, row, now)
        except LookupError as exc:
            raise ReviewStateConflict(row.id, "stale", ("pending",)) from exc
        repo = ReviewRepository(s)
        repo.transition(
            row.id,
            ReviewState.APPROVED,
            ReviewState.EXECUTED,
            executor_id=row.requester_id,
            executed_at=now,
        )
        s.refresh(row)
        events.review_event(s, events.REVIEW_EXECUTED, row, reviewer.id, now)

    @staticmethod
    def _refused(request_id: str, operator: Operator, reason: str) -> None:
        _log.warning(
            "review_refused", request_id=request_id, operator_id=operator.id, reason=reason
        )
