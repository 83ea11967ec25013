"""Plain-JSON views of service values, shared by the API and the pages (one shape for both)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forecourt.edge.app.services import EdgeServices, FeatureNotice
from forecourt.edge.operators import (
    APPROVER_ROLES,
    Operator,
    OperatorNotFound,
    Permission,
    Review,
    ReviewState,
    permissions_of,
)
from forecourt.edge.operators.reviews import SUBJECT_KEY
from forecourt.edge.workflow import Progress, WorkflowRecord, WorkflowState
from forecourt.edge.workflow.states import HAPPY_PATH, TERMINAL

#: What a technician reads for each state (the state name stays in the JSON for machines).
STATE_LABELS = {
    WorkflowState.REQUESTED: "Requested",
    WorkflowState.CONNECTED: "Connected to the car",
    WorkflowState.IDENTIFIED: "Identified (VIN, ECUs)",
    WorkflowState.AWAITING_REVIEW: "Waiting for a second operator",
    WorkflowState.AUTHORISED: "Authorised",
    WorkflowState.TRANSFERRING: "Transferring",
    WorkflowState.APPLYING: "Car applying",
    WorkflowState.VERIFIED: "Verified by the car",
    WorkflowState.DONE: "done",
    WorkflowState.FAILED: "failed",
    WorkflowState.REFUSED: "refused",
    WorkflowState.CANCELLED: "cancelled",
}


def operator_json(operator: Operator) -> dict[str, Any]:
    return {
        "id": operator.id,
        "username": operator.username,
        "display_name": operator.display_name,
        "role": operator.role.value,
        "dealer_id": operator.dealer_id,
        "permissions": sorted(p.value for p in permissions_of(operator.role)),
    }


def feature_json(notice: FeatureNotice) -> dict[str, Any]:
    return {
        "code": notice.code,
        "name": notice.name,
        "purpose": notice.purpose,
        "changed_functions": list(notice.changed_functions),
        "expected_duration_s": notice.expected_duration_s,
        "unavailable_meanwhile": list(notice.unavailable_meanwhile),
        "data_categories": list(notice.data_categories),
        "affects_type_approval": notice.affects_type_approval,
    }


def progress_json(progress: Progress) -> dict[str, Any]:
    """A workflow's progress for bars: per happy-path step done / current / pending."""
    reached = progress.state
    order = list(HAPPY_PATH)
    position = order.index(reached) if reached in order else None
    if reached is WorkflowState.AWAITING_REVIEW:
        position = order.index(WorkflowState.IDENTIFIED)
    steps = []
    for i, state in enumerate(order):
        if state.value in progress.timings_ms or (position is not None and i < position):
            status = "done"
        elif position is not None and i == position:
            status = "done" if reached in (WorkflowState.DONE,) else "current"
        else:
            status = "pending"
        steps.append(
            {
                "state": state.value,
                "label": STATE_LABELS[state][:1].upper() + STATE_LABELS[state][1:],
                "status": status,
                "ms": progress.timings_ms.get(state.value),
            }
        )
    done_steps = sum(1 for s in steps if s["status"] == "done")
    return {
        "workflow_id": progress.workflow_id,
        "vin": progress.vin,
        "state": progress.state.value,
        "label": STATE_LABELS[progress.state],
        "terminal": progress.state in TERMINAL,
        "offline": progress.offline,
        "bytes_done": progress.bytes_done,
        "bytes_total": progress.bytes_total,
        "percent": round(100 * done_steps / len(order)),
        "steps": steps,
        "error_code": progress.error_code,
        "error_detail": progress.error_detail,
        "review_ids": list(progress.review_ids),
    }


def workflow_json(wf: WorkflowRecord) -> dict[str, Any]:
    return {
        "workflow_id": wf.id,
        "vin": wf.vin,
        "state": wf.state.value,
        "label": STATE_LABELS[wf.state],
        "terminal": wf.state in TERMINAL,
        "features": list(wf.context.get("features", [])),
        "operator_id": wf.operator_id,
        "error_code": wf.error_code,
        "error_detail": wf.error_detail,
    }


def about_viewer(viewer: Operator, review: Review) -> bool:
    """Whether the request changes the viewer's own account (an ``operator_privilege``)."""
    return review.payload.get(SUBJECT_KEY) == viewer.id


def can_decide(viewer: Operator, review: Review) -> bool:
    """What the UI offers; the server decides again (ReviewService) whatever the UI showed."""
    return (
        review.state is ReviewState.PENDING
        and review.requester_id != viewer.id
        and not about_viewer(viewer, review)
        and Permission.REVIEW_APPROVE in permissions_of(viewer.role)
        and viewer.role in APPROVER_ROLES[review.kind]
    )


def review_json(review: Review, viewer: Operator, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": review.id,
        "kind": review.kind.value,
        "state": review.state.value,
        "payload": dict(review.payload),
        "payload_sha256": review.payload_sha256,
        "reason": review.reason,
        "requester_id": review.requester_id,
        "requester": names.get(review.requester_id, review.requester_id),
        "reviewer_id": review.reviewer_id,
        "reviewer": names.get(review.reviewer_id or "", review.reviewer_id),
        "decision_note": review.decision_note,
        "created_at": review.created_at.isoformat(),
        "expires_at": review.expires_at.isoformat(),
        "decided_at": review.decided_at.isoformat() if review.decided_at else None,
        "own": review.requester_id == viewer.id,
        "about_me": about_viewer(viewer, review),
        "can_decide": can_decide(viewer, review),
    }


def operator_names(services: EdgeServices, ids: Sequence[str | None]) -> dict[str, str]:
    names: dict[str, str] = {}
    for operator_id in {i for i in ids if i}:
        try:
            op = services.operators.get(operator_id)
            names[operator_id] = f"{op.display_name} ({op.username})"
        except OperatorNotFound:
            names[operator_id] = operator_id
    return names


def vehicles_json(
    services: EdgeServices, workflows: Sequence[WorkflowRecord]
) -> list[dict[str, Any]]:
    """Cars on the network with the state of their latest activation here (newest first)."""
    latest: dict[str, WorkflowRecord] = {}
    for record in workflows:
        latest.setdefault(record.vin, record)
    out = []
    for car in services.vehicles.discovered():
        wf = latest.get(car.vin)
        out.append(
            {
                "vin": car.vin,
                "address": car.address,
                "model": car.model,
                "state": wf.state.value if wf else "new",
                "label": STATE_LABELS[wf.state] if wf else "Not activated here",
                "workflow_id": wf.id if wf else None,
            }
        )
    return out
