"""Reads the events the anomaly rules need from the edge database, one dealer, one look-back.

Nothing new is stored: activations come from ``edge_activation_workflows`` (who, which car, when
started, how and when it ended), sign-in failures from the counters on ``edge_operators`` (the
operators module keeps the consecutive count and the lock, not a history of attempts), offline
use from ``edge_offline_packages.used_at``. A failed sign-in with an unknown username touches no
row; it is only logged and counted by the console's ``forecourt_edge_login_failures`` metric.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from forecourt.edge.anomaly.model import ActivationEvent, OfflineUse, RecentEvents, SigninState
from forecourt.edge.workflow.states import TERMINAL
from forecourt.store.edge import EdgeActivationWorkflow, EdgeOfflinePackage, EdgeOperator

_TERMINAL_STATES = frozenset(s.value for s in TERMINAL)


class AnomalyEventRepository:
    """Read-only queries; each call opens and closes its own session."""

    def __init__(self, sessions: sessionmaker[Session], dealer_id: str) -> None:
        self._sessions = sessions
        self._dealer_id = dealer_id

    def recent(self, now: datetime, lookback: timedelta) -> RecentEvents:
        """Events of this dealer since ``now - lookback`` (the rules apply the exact bounds)."""
        since = now - lookback
        with self._sessions() as s:
            return RecentEvents(
                activations=self._activations(s, since),
                signins=self._signins(s),
                offline_uses=self._offline_uses(s, since),
            )

    def _activations(self, s: Session, since: datetime) -> tuple[ActivationEvent, ...]:
        wf = EdgeActivationWorkflow
        rows = s.execute(
            select(wf, EdgeOperator.username)
            .join(EdgeOperator, EdgeOperator.id == wf.operator_id)
            .where(wf.dealer_id == self._dealer_id)
            # started in the look-back, or ended in it (updated_at of a terminal workflow)
            .where(or_(wf.created_at > since, wf.updated_at > since))
            .order_by(wf.created_at, wf.id)
        ).all()
        return tuple(
            ActivationEvent(
                workflow_id=row.id,
                operator_id=row.operator_id,
                operator=username,
                vin=row.vin,
                started_at=row.created_at,
                state=row.state,
                ended_at=row.updated_at if row.state in _TERMINAL_STATES else None,
                code=row.error_code,
                offline=row.offline,
            )
            for row, username in rows
        )

    def _signins(self, s: Session) -> tuple[SigninState, ...]:
        rows = s.scalars(
            select(EdgeOperator)
            .where(EdgeOperator.dealer_id == self._dealer_id)
            .where(or_(EdgeOperator.failed_attempts > 0, EdgeOperator.locked_until.is_not(None)))
            .order_by(EdgeOperator.username)
        ).all()
        return tuple(
            SigninState(
                operator_id=row.id,
                operator=row.username,
                consecutive_failures=row.failed_attempts,
                locked_until=row.locked_until,
            )
            for row in rows
        )

    def _offline_uses(self, s: Session, since: datetime) -> tuple[OfflineUse, ...]:
        user = aliased(EdgeOperator)
        pkg = EdgeOfflinePackage
        rows = s.execute(
            select(pkg.id, pkg.vin, pkg.used_at, user.username)
            .outerjoin(user, user.id == pkg.used_by_operator_id)
            .where(pkg.dealer_id == self._dealer_id)
            .where(pkg.used_at.is_not(None))
            .where(pkg.used_at > since)
            .order_by(pkg.used_at, pkg.id)
        ).all()
        return tuple(
            OfflineUse(package_id=pid, vin=vin, used_at=used_at, operator=username)
            for pid, vin, used_at, username in rows
            if used_at is not None
        )
