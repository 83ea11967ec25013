"""What every end-to-end test checks the same way: the edge ledger, the cloud's dossier."""

from __future__ import annotations

from sqlalchemy import func, select

from forecourt.edge.wiring import Edge
from forecourt.edge.workflow import StepRecord, WorkflowStore
from forecourt.ledger.audit import audit_store
from forecourt.store.edge import EdgeOutboxMessage, EdgeWorkflowStep
from forecourt.store.ledger import LedgerEntry
from forecourt.store.registry import ActivationRow, SyncEventRow, VehicleRow
from tests.e2e.world import CloudStack


def steps(edge: Edge, workflow_id: str) -> list[StepRecord]:
    return WorkflowStore(edge.sessions, edge.audit).steps(workflow_id)


def ledger_is_whole(edge: Edge) -> None:
    """Every committed step has exactly one ledger entry, and the log audits clean."""
    edge.log.issue_checkpoint()
    audit_store(edge.log.store, edge.log.verifier)
    with edge.sessions() as s:
        count = s.execute(select(func.count()).select_from(EdgeWorkflowStep)).scalar_one()
        indices = s.execute(select(EdgeWorkflowStep.ledger_index)).scalars().all()
        entries = s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    assert len(set(indices)) == count == entries


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
