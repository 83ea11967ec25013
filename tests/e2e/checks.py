"""What every end-to-end test checks the same way: the edge ledger, the cloud's dossier."""

from __future__ import annotations

from sqlalchemy import select

from forecourt.edge.wiring import Edge
from forecourt.edge.workflow import StepRecord, WorkflowStore
from forecourt.ledger.audit import audit_store
from forecourt.ledger.entry import ActivityRecord, DealerEventRecord, EventKind, decode_record
from forecourt.store.edge import EdgeOutboxMessage, EdgeWorkflowStep
from forecourt.store.registry import ActivationRow, SyncEventRow, VehicleRow
from tests.e2e.world import CloudStack


def steps(edge: Edge, workflow_id: str) -> list[StepRecord]:
    return WorkflowStore(edge.sessions, edge.audit).steps(workflow_id)


def ledger_is_whole(edge: Edge) -> None:
    """The log audits clean; every committed step has exactly one ledger entry, a car record;
    every other entry is one the edge writes outside a workflow (an operator or review change, a
    consent given or withdrawn at the desk), never a car event without its step."""
    edge.log.issue_checkpoint()
    audit_store(edge.log.store, edge.log.verifier)
    with edge.sessions() as s:
        indices = s.execute(select(EdgeWorkflowStep.ledger_index)).scalars().all()
    entries = edge.log.store.entries(0, edge.log.store.size())
    step_indices = set(indices)
    assert len(step_indices) == len(indices)
    assert step_indices <= {e.index for e in entries}
    for entry in entries:
        record = decode_record(entry.payload)
        if entry.index in step_indices:
            assert isinstance(record, ActivityRecord), f"step entry {entry.index}: {record}"
        else:
            assert isinstance(record, DealerEventRecord) or (
                isinstance(record, ActivityRecord) and record.kind is EventKind.CONSENT_CHANGE
            ), f"entry {entry.index} belongs to no step: {record}"


def cloud_activation(stack: CloudStack, vin: str) -> list[tuple[str, str]]:
    """``(status, dealer)`` of every activation the cloud holds for ``vin``."""
    with stack.world.context.db.sessions() as s:
        rows = s.execute(select(ActivationRow.status, ActivationRow.dealer_id).where(
            ActivationRow.vin == vin)).all()  # fmt: skip
    return [(str(a), str(b)) for a, b in rows]


def cloud_vehicle_state(stack: CloudStack, vin: str) -> str:
    with stack.world.context.db.sessions() as s:
        return str(s.execute(select(VehicleRow.state).where(VehicleRow.vin == vin)).scalar_one())


def held_by_cloud(stack: CloudStack, vin: str) -> list[str]:
    """Ids of the sync events the cloud holds about ``vin`` (one row per id, by its key)."""
    with stack.world.context.db.sessions() as s:
        rows = s.execute(select(SyncEventRow.event_id).where(SyncEventRow.subject == vin)).scalars()
        return sorted(rows)


def sent_by_edge(edge: Edge, vin: str) -> list[str]:
    """Ids of the outbox messages about ``vin`` the edge has delivered."""
    with edge.sessions() as s:
        rows = s.execute(
            select(EdgeOutboxMessage.event_id).where(
                EdgeOutboxMessage.subject == vin, EdgeOutboxMessage.sent_at.is_not(None)
            )
        ).scalars()
        return sorted(rows)
