"""Workflow rows and their steps: the one place that writes ``edge_activation_workflows``.

:meth:`WorkflowStore.commit_step` is the heart of crash safety. In ONE transaction it checks
the move against :data:`~forecourt.edge.workflow.states.TRANSITIONS` and the row's version
(optimistic concurrency: a stale runner's write matches nothing and is refused), appends the
ledger entry, writes the step row with its evidence, updates the workflow, queues the outbox
message, and runs the caller's extra writes (consent rows, an offline package claim). After a
crash the database holds all of them or none, so resuming never repeats or loses a step record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.audit import AuditFacts, EdgeAudit, NetworkContext, evidence_digest
from forecourt.edge.outbox import WORKFLOW_STEP, enqueue
from forecourt.edge.workflow.errors import StaleWorkflow, WorkflowNotFound
from forecourt.edge.workflow.states import TERMINAL, WorkflowState, check_transition
from forecourt.ledger.entry import EventKind
from forecourt.store.edge import EdgeActivationWorkflow, EdgeWorkflowStep


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A workflow as stored, detached from the session."""

    id: str
    dealer_id: str
    vin: str
    state: WorkflowState
    operator_id: str
    offline: bool
    context: Mapping[str, Any]
    error_code: str | None
    error_detail: str | None
    version: int
    attempt: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StepRecord:
    seq: int
    from_state: WorkflowState | None
    to_state: WorkflowState
    status: str
    evidence: Mapping[str, Any]
    evidence_sha256: str
    ledger_index: int
    started_at: datetime
    finished_at: datetime
    duration_ms: int


@dataclass(frozen=True, slots=True)
class StepCommit:
    """What a caller wants committed with a move to ``target``."""

    target: WorkflowState
    status: str
    evidence: Mapping[str, Any]
    started_at: datetime
    finished_at: datetime
    network: NetworkContext
    context: Mapping[str, Any] = field(default_factory=dict)
    vin: str | None = None
    offline: bool | None = None
    error_code: str | None = None
    error_detail: str | None = None
    kind: EventKind = EventKind.ACTIVATION
    reviewer_id: str | None = None
    extra_evidence_hashes: tuple[str, ...] = ()
    #: More writes in the same transaction (consent rows, an offline claim); may add context.
    writes: Callable[[Session], Mapping[str, Any] | None] | None = None


def _record(row: EdgeActivationWorkflow) -> WorkflowRecord:
    return WorkflowRecord(
        id=row.id,
        dealer_id=row.dealer_id,
        vin=row.vin,
        state=WorkflowState(row.state),
        operator_id=row.operator_id,
        offline=row.offline,
        context=dict(row.context),
        error_code=row.error_code,
        error_detail=row.error_detail,
        version=row.version,
        attempt=row.attempt,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class WorkflowStore:
    def __init__(self, sessions: sessionmaker[Session], audit: EdgeAudit) -> None:
        self._sessions = sessions
        self._audit = audit

    def create(
        self,
        *,
        dealer_id: str,
        vin: str,
        operator_id: str,
        context: Mapping[str, Any],
        now: datetime,
    ) -> WorkflowRecord:
        row = EdgeActivationWorkflow(
            id=str(uuid.uuid4()),
            dealer_id=dealer_id,
            vin=vin,
            state=WorkflowState.REQUESTED.value,
            step=None,
            attempt=0,
            operator_id=operator_id,
            review_request_id=None,
            offline=False,
            context=dict(context),
            error_code=None,
            error_detail=None,
            version=1,
            created_at=now,
            updated_at=now,
        )
        with self._sessions.begin() as s:
            s.add(row)
        return _record(row)

    def get(self, workflow_id: str) -> WorkflowRecord:
        with self._sessions() as s:
            row = s.get(EdgeActivationWorkflow, workflow_id)
            if row is None:
                raise WorkflowNotFound(workflow_id)
            return _record(row)

    def for_dealer(
        self, dealer_id: str, *, states: frozenset[WorkflowState] | None = None, limit: int = 200
    ) -> list[WorkflowRecord]:
        with self._sessions() as s:
            q = select(EdgeActivationWorkflow).where(EdgeActivationWorkflow.dealer_id == dealer_id)
            if states is not None:
                q = q.where(EdgeActivationWorkflow.state.in_([x.value for x in states]))
            q = q.order_by(EdgeActivationWorkflow.created_at.desc()).limit(limit)
            return [_record(r) for r in s.execute(q).scalars()]

    def unfinished(self) -> list[WorkflowRecord]:
        with self._sessions() as s:
            q = (
                select(EdgeActivationWorkflow)
                .where(EdgeActivationWorkflow.state.not_in([x.value for x in TERMINAL]))
                .order_by(EdgeActivationWorkflow.created_at)
            )
            return [_record(r) for r in s.execute(q).scalars()]

    def steps(self, workflow_id: str) -> list[StepRecord]:
        with self._sessions() as s:
            rows = s.execute(
                select(EdgeWorkflowStep)
                .where(EdgeWorkflowStep.workflow_id == workflow_id)
                .order_by(EdgeWorkflowStep.seq)
            ).scalars()
            return [
                StepRecord(
                    r.seq,
                    WorkflowState(r.from_state) if r.from_state else None,
                    WorkflowState(r.to_state),
                    r.status,
                    dict(r.evidence),
                    r.evidence_sha256,
                    r.ledger_index,
                    r.started_at,
                    r.finished_at,
                    r.duration_ms,
                )
                for r in rows
            ]

    def save_context(
        self, wf: WorkflowRecord, updates: Mapping[str, Any], now: datetime
    ) -> WorkflowRecord:
        """Merge ``updates`` into the context without a state change (e.g. a finished file)."""
        with self._sessions.begin() as s:
            context = {**wf.context, **updates}
            moved = s.execute(
                update(EdgeActivationWorkflow)
                .where(
                    EdgeActivationWorkflow.id == wf.id,
                    EdgeActivationWorkflow.version == wf.version,
                )
                .values(context=context, version=wf.version + 1, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if moved != 1:
                raise StaleWorkflow(wf.id, wf.version)
        return self.get(wf.id)

    def bump_attempt(self, wf: WorkflowRecord, now: datetime) -> WorkflowRecord:
        with self._sessions.begin() as s:
            moved = s.execute(
                update(EdgeActivationWorkflow)
                .where(
                    EdgeActivationWorkflow.id == wf.id,
                    EdgeActivationWorkflow.version == wf.version,
                )
                .values(attempt=wf.attempt + 1, version=wf.version + 1, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if moved != 1:
                raise StaleWorkflow(wf.id, wf.version)
        return self.get(wf.id)

    def commit_step(
        self, wf: WorkflowRecord, step: StepCommit
    ) -> tuple[WorkflowRecord, StepRecord]:
        """Move ``wf`` to ``step.target`` with its evidence, ledger entry and outbox message."""
        check_transition(wf.id, wf.state, step.target)
        vin = step.vin or wf.vin
        offline = wf.offline if step.offline is None else step.offline
        with self._sessions.begin() as s:
            row = s.execute(
                select(EdgeActivationWorkflow)
                .where(EdgeActivationWorkflow.id == wf.id)
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise WorkflowNotFound(wf.id)
            if row.version != wf.version:
                raise StaleWorkflow(wf.id, wf.version)
            extra_context = dict(step.writes(s) or {}) if step.writes is not None else {}
            context = {**wf.context, **step.context, **extra_context}
            seq = (
                int(
                    s.execute(
                        select(func.coalesce(func.max(EdgeWorkflowStep.seq), 0)).where(
                            EdgeWorkflowStep.workflow_id == wf.id
                        )
                    ).scalar_one()
                )
                + 1
            )
            duration_ms = max(0, int((step.finished_at - step.started_at).total_seconds() * 1000))
            evidence = {
                "workflow_id": wf.id,
                "seq": seq,
                "from": wf.state.value,
                "to": step.target.value,
                "status": step.status,
                "started_at": step.started_at.isoformat(),
                "finished_at": step.finished_at.isoformat(),
                "duration_ms": duration_ms,
                "network": step.network.to_dict(),
                "step": dict(step.evidence),
                **({"reviewer_id_present": True} if step.reviewer_id else {}),
            }
            digest = evidence_digest(evidence)
            features = tuple(str(f) for f in context.get("features", ()))
            ledger_index = self._audit.record_in(
                s,
                AuditFacts(
                    timestamp=step.finished_at,
                    kind=step.kind,
                    vin=vin if len(vin) == 17 else "0" * 17,
                    dealer_id=wf.dealer_id,
                    online=not offline,
                    status=f"{step.target.value}:{step.status}",
                    evidence_hashes=(digest, *step.extra_evidence_hashes),
                    operator_id=wf.operator_id,
                    reviewer_id=step.reviewer_id,
                    features=features,
                ),
            )
            s.add(
                EdgeWorkflowStep(
                    workflow_id=wf.id,
                    seq=seq,
                    from_state=wf.state.value,
                    to_state=step.target.value,
                    status=step.status,
                    evidence=evidence,
                    evidence_sha256=digest,
                    ledger_index=ledger_index,
                    started_at=step.started_at,
                    finished_at=step.finished_at,
                    duration_ms=duration_ms,
                )
            )
            row.state = step.target.value
            row.step = step.status
            row.vin = vin
            row.offline = offline
            row.context = context
            row.version = wf.version + 1
            row.updated_at = step.finished_at
            if step.error_code is not None:
                row.error_code = step.error_code
                row.error_detail = step.error_detail
            enqueue(
                s,
                WORKFLOW_STEP,
                {
                    "workflow_id": wf.id,
                    "dealer_id": wf.dealer_id,
                    "vin": vin,
                    "seq": seq,
                    "from": wf.state.value,
                    "to": step.target.value,
                    "status": step.status,
                    "evidence_sha256": digest,
                    "ledger_index": ledger_index,
                    "offline": offline,
                    "at": step.finished_at.isoformat(),
                },
                now=step.finished_at,
                subject=vin,
            )
            s.flush()
            record = _record(row)
        return record, StepRecord(
            seq,
            wf.state,
            step.target,
            step.status,
            evidence,
            digest,
            ledger_index,
            step.started_at,
            step.finished_at,
            duration_ms,
        )
