"""Dealer-level events of the operators package: account lifecycle and review decisions.

Each event is logged and, when an :class:`~forecourt.edge.audit.EdgeAudit` is bound to the session
factory, appended to the edge ledger inside the caller's transaction — the change and its evidence
commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOperator, EdgeReviewRequest

_log = get_logger("edge.operators.events")

OPERATOR_CREATED = "operator-created"
OPERATOR_ENROLLED = "operator-enrolled"
OPERATOR_ROLE_CHANGED = "operator-role-changed"
OPERATOR_LOCKED = "operator-locked"
OPERATOR_ACTIVATED = "operator-activated"
OPERATOR_DEACTIVATED = "operator-deactivated"
REVIEW_REQUESTED = "review-requested"
REVIEW_APPROVED = "review-approved"
REVIEW_REJECTED = "review-rejected"
REVIEW_EXECUTED = "review-executed"


def operator_event(
    s: Session,
    kind: str,
    at: datetime,
    actor_id: str | None,
    subject: EdgeOperator,
    *,
    role: str | None = None,
) -> None:
    """Record ``kind`` about ``subject``, done by ``actor_id`` (None: the system, e.g. a lock)."""
    evidence = {"event": kind, "subject_id": subject.id, "role": role or subject.role}
    _record(s, kind, at, subject.dealer_id, actor_id, subject.id, evidence)


def review_event(
    s: Session, kind: str, review: EdgeReviewRequest, actor_id: str, at: datetime | None = None
) -> None:
    """Record ``kind`` about ``review`` by ``actor_id``; the evidence pins its payload hash."""
    evidence = {
        "event": kind,
        "request_id": review.id,
        "review_kind": review.kind,
        "payload_sha256": review.payload_sha256,
        "requester_id": review.requester_id,
    }
    when = at or review.decided_at or review.created_at
    _record(s, kind, when, review.dealer_id, actor_id, review.requester_id, evidence)


def _record(  # noqa: PLR0917 - one value per field of the record
    s: Session,
    kind: str,
    at: datetime,
    dealer_id: str,
    actor_id: str | None,
    subject_id: str | None,
    evidence: Mapping[str, str | None],
) -> None:
    _log.info("dealer_event", kind=kind, dealer_id=dealer_id, actor_id=actor_id, subject=subject_id)
