"""Repositories: the only code in this package that speaks SQL (SQLAlchemy 2).

Each repository wraps one :class:`~sqlalchemy.orm.Session` owned by the service's transaction.
Rows read for a read-modify-write are locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serialises writers on its own), and state transitions are conditional ``UPDATE``s, so two
concurrent reviewers or executors cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from forecourt.edge.operators.model import Operator
from forecourt.edge.operators.reviews import Review, ReviewKind, ReviewState
from forecourt.edge.operators.roles import Role
from forecourt.store.edge import EdgeOperator, EdgeReviewRequest, EdgeSession


def to_operator(row: EdgeOperator) -> Operator:
    return Operator(
        id=row.id,
        dealer_id=row.dealer_id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        active=row.active,
        totp_enrolled=row.totp_secret is not None,
        locked_until=row.locked_until,
        pending_role=None if row.pending_role is None else Role(row.pending_role),
        awaiting_approval=row.awaiting_approval,
    )


def to_review(row: EdgeReviewRequest) -> Review:
    return Review(
        id=row.id,
        dealer_id=row.dealer_id,
        kind=ReviewKind(row.kind),
        state=ReviewState(row.state),
        payload=dict(row.payload),
        payload_sha256=row.payload_sha256,
        reason=row.reason,
        requester_id=row.requester_id,
        reviewer_id=row.reviewer_id,
        executor_id=row.executor_id,
        decision_note=row.decision_note,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        executed_at=row.executed_at,
    )


class OperatorRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, row: EdgeOperator) -> None:
        self._s.add(row)
        self._s.flush()

    def get(self, operator_id: str, *, for_update: bool = False) -> EdgeOperator | None:
        stmt = select(EdgeOperator).where(EdgeOperator.id == operator_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self._s.scalars(stmt).one_or_none()

    def by_username(
        self, dealer_id: str, username: str, *, for_update: bool = False
    ) -> EdgeOperator | None:
        stmt = select(EdgeOperator).where(
            EdgeOperator.dealer_id == dealer_id, EdgeOperator.username == username
        )
        if for_update:
            stmt = stmt.with_for_update()
        return self._s.scalars(stmt).one_or_none()

    def exists(self, dealer_id: str, username: str) -> bool:
        return self.by_username(dealer_id, username) is not None

    def count_for_dealer(self, dealer_id: str) -> int:
        stmt = select(func.count()).select_from(EdgeOperator)
        return int(self._s.scalar(stmt.where(EdgeOperator.dealer_id == dealer_id)) or 0)

    def list_for_dealer(self, dealer_id: str) -> Sequence[EdgeOperator]:
        stmt = select(EdgeOperator).where(EdgeOperator.dealer_id == dealer_id)
        return self._s.scalars(stmt.order_by(EdgeOperator.username)).all()


class SessionRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, row: EdgeSession) -> None:
        self._s.add(row)
        self._s.flush()

    def by_token_digest(self, digest: str) -> EdgeSession | None:
        stmt = select(EdgeSession).where(EdgeSession.token_sha256 == digest)
        return self._s.scalars(stmt).one_or_none()

    def revoke_all_for(self, operator_id: str, at: datetime, reason: str) -> int:
        """Revoke every live session of the operator; returns how many were live."""
        result = self._s.execute(
            update(EdgeSession)
            .where(EdgeSession.operator_id == operator_id, EdgeSession.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
        )
        return _rowcount(result)


class ReviewRepository:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, row: EdgeReviewRequest) -> None:
        self._s.add(row)
        self._s.flush()

    def get(self, request_id: str, *, for_update: bool = False) -> EdgeReviewRequest | None:
        stmt = select(EdgeReviewRequest).where(EdgeReviewRequest.id == request_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self._s.scalars(stmt).one_or_none()

    def transition(
        self,
        request_id: str,
        from_state: ReviewState,
        to_state: ReviewState,
        *,
        not_expired_at: datetime | None = None,
        **values: Any,
    ) -> bool:
        """Move the request from ``from_state`` to ``to_state`` if it is still there; True if moved.

        With ``not_expired_at`` the move also needs ``expires_at`` to be later than that instant.
        """
        stmt = update(EdgeReviewRequest).where(
            EdgeReviewRequest.id == request_id, EdgeReviewRequest.state == from_state.value
        )
        if not_expired_at is not None:
            stmt = stmt.where(EdgeReviewRequest.expires_at > not_expired_at)
        result = self._s.execute(
            stmt.values(state=to_state.value, **values).execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    def expire_due(self, at: datetime, dealer_id: str | None = None) -> int:
        stmt = update(EdgeReviewRequest).where(
            EdgeReviewRequest.state == ReviewState.PENDING.value,
            EdgeReviewRequest.expires_at <= at,
        )
        if dealer_id is not None:
            stmt = stmt.where(EdgeReviewRequest.dealer_id == dealer_id)
        result = self._s.execute(
            stmt.values(state=ReviewState.EXPIRED.value).execution_options(
                synchronize_session=False
            )
        )
        return _rowcount(result)

    def list_for_dealer(
        self, dealer_id: str, state: ReviewState | None = None
    ) -> Sequence[EdgeReviewRequest]:
        stmt = select(EdgeReviewRequest).where(EdgeReviewRequest.dealer_id == dealer_id)
        if state is not None:
            stmt = stmt.where(EdgeReviewRequest.state == state.value)
        return self._s.scalars(stmt.order_by(EdgeReviewRequest.created_at)).all()


def _rowcount(result: Any) -> int:
    if not isinstance(result, CursorResult):  # pragma: no cover - DML always gives one
        raise TypeError("expected a CursorResult from a DML statement")
    return int(result.rowcount)
