"""Counts one dealer's period in the edge database: the only I/O of a transparency report.

Nothing new is stored; every figure comes from rows the edge already keeps:

* activations: ``edge_activation_workflows`` that reached a terminal state in the period
  (``updated_at`` of a terminal row is when it ended), their ``error_code`` and context features;
* consent: ``edge_consent_records`` (append-only) recorded in the period; whether a ``denied`` row
  withdraws an earlier grant is decided from the car's whole history at this dealer, and a
  withdrawal's propagation from the ``consent.recorded`` outbox message naming its row id;
* operators: sign-ins (``edge_sessions``), activations started, consent rows and reviews, grouped
  by the operator's role (ids never leave this module);
* reviews: ``edge_review_requests`` created, or decided, in the period;
* anomalies: the events :class:`~forecourt.edge.anomaly.AnomalyEventRepository` reads;
* the ledger: the first signed checkpoint issued at or after the period's end (its tree holds
  every entry of the period), else the newest one, flagged as not covering it.
"""

from __future__ import annotations

import base64
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.anomaly import AnomalyEventRepository, RecentEvents
from forecourt.edge.outbox import CONSENT_RECORDED
from forecourt.edge.transparency.model import CheckpointFacts, Period, PeriodFacts, RoleActivity
from forecourt.edge.workflow.states import TERMINAL
from forecourt.store.edge import (
    EdgeActivationWorkflow,
    EdgeConsentRecord,
    EdgeOperator,
    EdgeOutboxMessage,
    EdgeReviewRequest,
    EdgeSession,
)
from forecourt.store.ledger import LedgerCheckpoint

_TERMINAL = frozenset(s.value for s in TERMINAL)
_CROSS_BORDER = "cross_border"
_APPROVED = frozenset({"approved", "executed"})


@dataclass(frozen=True, slots=True)
class _ConsentCounts:
    grants: dict[str, int]
    withdrawals: dict[str, int]
    refusals: dict[str, int]
    propagation: dict[str, int]
    cross_border: dict[str, int]
    notice_versions: tuple[str, ...]


class TransparencyRepository:
    """Read-only; each call opens and closes its own session."""

    def __init__(self, sessions: sessionmaker[Session], dealer_id: str) -> None:
        self._sessions = sessions
        self._dealer_id = dealer_id

    def facts(self, period: Period) -> PeriodFacts:
        start, end = period.start_at, period.end_at
        roles: dict[str, dict[str, int]] = defaultdict(Counter)
        with self._sessions() as s:
            role_of = self._roles(s)
            outcomes, refusals, features = self._activations(s, start, end, role_of, roles)
            consent = self._consent(s, start, end, role_of, roles)
            requested, decided = self._reviews(s, start, end, role_of, roles)
            self._sign_ins(s, start, end, roles)
            checkpoint = self._checkpoint(s, end)
        events = AnomalyEventRepository(self._sessions, self._dealer_id).recent(end, end - start)
        return PeriodFacts(
            dealer_id=self._dealer_id,
            period=period,
            outcomes=outcomes,
            refusals_by_code=refusals,
            features_enabled=features,
            grants_by_category=consent.grants,
            withdrawals_by_category=consent.withdrawals,
            refusals_by_category=consent.refusals,
            withdrawal_propagation=consent.propagation,
            cross_border=consent.cross_border,
            notice_versions_answered=consent.notice_versions,
            activity_by_role={
                role: RoleActivity(
                    sign_ins=c["sign_ins"],
                    activations_started=c["activations_started"],
                    consent_answers_recorded=c["consent_answers_recorded"],
                    reviews_requested=c["reviews_requested"],
                    reviews_decided=c["reviews_decided"],
                )
                for role, c in roles.items()
            },
            reviews_requested_by_kind=requested,
            reviews_decided=decided,
            events=RecentEvents(events.activations, (), events.offline_uses),
            checkpoint=checkpoint,
        )

    def _roles(self, s: Session) -> dict[str, str]:
        rows = s.execute(
            select(EdgeOperator.id, EdgeOperator.role).where(
                EdgeOperator.dealer_id == self._dealer_id
            )
        ).all()
        return {op_id: role for op_id, role in rows}

    def _activations(
        self,
        s: Session,
        start: datetime,
        end: datetime,
        role_of: dict[str, str],
        roles: dict[str, dict[str, int]],
    ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        wf = EdgeActivationWorkflow
        outcomes: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        features: Counter[str] = Counter()
        ended = s.execute(
            select(wf.state, wf.error_code, wf.context)
            .where(wf.dealer_id == self._dealer_id)
            .where(wf.state.in_(_TERMINAL), wf.updated_at >= start, wf.updated_at < end)
        ).all()
        for state, code, context in ended:
            outcomes[state] += 1
            if state == "refused":
                refusals[code or "unknown"] += 1
            if state == "done":
                features.update(str(f) for f in (context or {}).get("features", ()))
        started = s.execute(
            select(wf.operator_id)
            .where(wf.dealer_id == self._dealer_id)
            .where(wf.created_at >= start, wf.created_at < end)
        ).scalars()
        for operator_id in started:
            roles[role_of.get(operator_id, "unknown")]["activations_started"] += 1
        return dict(outcomes), dict(refusals), dict(features)

    def _consent(
        self,
        s: Session,
        start: datetime,
        end: datetime,
        role_of: dict[str, str],
        roles: dict[str, dict[str, int]],
    ) -> _ConsentCounts:
        rec = EdgeConsentRecord
        rows = s.execute(
            select(rec)
            .where(rec.dealer_id == self._dealer_id, rec.recorded_at < end)
            .order_by(rec.recorded_at, rec.id)
        ).scalars()
        grants: Counter[str] = Counter()
        withdrawals: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        cross: Counter[str] = Counter()
        notices: set[str] = set()
        withdrawn_ids: list[str] = []
        last: dict[tuple[str, str], str] = {}
        for row in rows:
            key = (row.vin, row.purpose)
            previous = last.get(key)
            last[key] = row.decision
            if row.recorded_at < start:
                continue
            notices.add(row.notice_version)
            if row.operator_id is not None:
                roles[role_of.get(row.operator_id, "unknown")]["consent_answers_recorded"] += 1
            if row.purpose == _CROSS_BORDER:
                cross[row.decision] += 1
            elif row.decision == "granted":
                grants[row.purpose] += 1
            elif previous == "granted":
                withdrawals[row.purpose] += 1
                withdrawn_ids.append(row.id)
            else:
                refusals[row.purpose] += 1
        return _ConsentCounts(
            grants=dict(grants),
            withdrawals=dict(withdrawals),
            refusals=dict(refusals),
            propagation=self._propagation(s, start, withdrawn_ids),
            cross_border=dict(cross),
            notice_versions=tuple(sorted(notices)),
        )

    def _propagation(self, s: Session, start: datetime, row_ids: list[str]) -> dict[str, int]:
        """Each withdrawal's state by the outbox message that names its row (one per answer)."""
        if not row_ids:
            return {}
        wanted = set(row_ids)
        state_of: dict[str, str] = {}
        messages = s.execute(
            select(EdgeOutboxMessage.payload, EdgeOutboxMessage.sent_at, EdgeOutboxMessage.dead_at)
            .where(EdgeOutboxMessage.event_type == CONSENT_RECORDED)
            .where(EdgeOutboxMessage.created_at >= start)
        ).all()
        for payload, sent_at, dead_at in messages:
            state = "propagated" if sent_at is not None else "failed" if dead_at else "pending"
            for row_id in (payload or {}).get("record_ids", ()):
                if row_id in wanted:
                    state_of[str(row_id)] = state
        counts: Counter[str] = Counter(state_of.get(i, "pending") for i in row_ids)
        return dict(counts)

    def _reviews(
        self,
        s: Session,
        start: datetime,
        end: datetime,
        role_of: dict[str, str],
        roles: dict[str, dict[str, int]],
    ) -> tuple[dict[str, int], dict[str, int]]:
        rv = EdgeReviewRequest
        requested: Counter[str] = Counter()
        decided: Counter[str] = Counter()
        rows = s.execute(select(rv).where(rv.dealer_id == self._dealer_id)).scalars()
        for row in rows:
            if start <= row.created_at < end:
                requested[row.kind] += 1
                roles[role_of.get(row.requester_id, "unknown")]["reviews_requested"] += 1
            if row.decided_at is not None and start <= row.decided_at < end:
                if row.state in _APPROVED:
                    decided["approved"] += 1
                elif row.state == "rejected":
                    decided["rejected"] += 1
                if row.reviewer_id is not None:
                    roles[role_of.get(row.reviewer_id, "unknown")]["reviews_decided"] += 1
            elif row.state == "expired" and start <= row.expires_at < end:
                decided["expired"] += 1
        return dict(requested), dict(decided)

    def _sign_ins(
        self, s: Session, start: datetime, end: datetime, roles: dict[str, dict[str, int]]
    ) -> None:
        rows = s.execute(
            select(EdgeOperator.role)
            .join(EdgeSession, EdgeSession.operator_id == EdgeOperator.id)
            .where(EdgeOperator.dealer_id == self._dealer_id)
            .where(EdgeSession.created_at >= start, EdgeSession.created_at < end)
        ).scalars()
        for role in rows:
            roles[role]["sign_ins"] += 1

    def _checkpoint(self, s: Session, end: datetime) -> CheckpointFacts | None:
        cp = LedgerCheckpoint
        covering = s.execute(
            select(cp).where(cp.issued_at >= end).order_by(cp.issued_at, cp.id).limit(1)
        ).scalar_one_or_none()
        row = covering or s.execute(select(cp).order_by(cp.id.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            return None
        return CheckpointFacts(
            origin=row.note.split("\n", 1)[0],
            size=int(row.size),
            root_hash_b64=base64.b64encode(bytes(row.root_hash)).decode(),
            note=row.note,
            issued_at=row.issued_at,
            covers_period_end=covering is not None,
        )
