"""Dealer-level events of the operators package: account lifecycle and review decisions.

Each event is logged and, when an :class:`~forecourt.edge.audit.EdgeAudit` is bound to the session
factory (:meth:`~forecourt.edge.audit.EdgeAudit.bind`, as the edge's wiring and the ``edge
operator`` commands do), appended to the edge ledger inside the caller's transaction: the change
and its ledger entry commit together or not at all.

Who acted and whom the change concerned go to the ledger as salted commitments only. The evidence
document names no person either (its hash would otherwise be an unsalted commitment that survives
crypto-shredding): it holds the role, or the review's kind, id, state and payload digest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

# The module, not its names: forecourt.edge.audit imports the outbox, which imports this
# package's clock, so the names are looked up at call time, after both modules are loaded.
from forecourt.edge import audit as edge_audit
from forecourt.ledger.entry import DealerEventKind
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOperator, EdgeReviewRequest

_log = get_logger("edge.operators.events")

OPERATOR_CREATED = DealerEventKind.OPERATOR_CREATED
OPERATOR_ENROLLED = DealerEventKind.OPERATOR_ENROLLED
OPERATOR_ROLE_CHANGED = DealerEventKind.OPERATOR_ROLE_CHANGED
OPERATOR_LOCKED = DealerEventKind.OPERATOR_LOCKED
OPERATOR_ACTIVATED = DealerEventKind.OPERATOR_ACTIVATED
OPERATOR_DEACTIVATED = DealerEventKind.OPERATOR_DEACTIVATED
REVIEW_REQUESTED = DealerEventKind.REVIEW_REQUESTED
REVIEW_APPROVED = DealerEventKind.REVIEW_APPROVED
REVIEW_REJECTED = DealerEventKind.REVIEW_REJECTED
REVIEW_EXECUTED = DealerEventKind.REVIEW_EXECUTED


def operator_event(
    s: Session,
    kind: DealerEventKind,
    at: datetime,
    actor_id: str | None,
    subject: EdgeOperator,
    *,
    role: str | None = None,
) -> None:
    """Record ``kind`` about ``subject``, done by ``actor_id`` (None: the system, e.g. a lock)."""
    granted = role or subject.role
    evidence = {"event": kind.value, "role": granted}
    _record(
        s,
        edge_audit.DealerFacts(
            timestamp=at,
            kind=kind,
            dealer_id=subject.dealer_id,
            evidence=evidence,
            actor_id=actor_id,
            subject_id=subject.id,
            role=granted,
        ),
    )


def review_event(
    s: Session,
    kind: DealerEventKind,
    review: EdgeReviewRequest,
    actor_id: str,
    at: datetime | None = None,
) -> None:
    """Record ``kind`` about ``review`` by ``actor_id``; the evidence pins its payload hash.

    The subject is the review's requester: the person whose request was decided or executed.
    """
    evidence: dict[str, Any] = {
        "event": kind.value,
        "request_id": review.id,
        "review_kind": review.kind,
        "state": review.state,
        "payload_sha256": review.payload_sha256,
    }
    _record(
        s,
        edge_audit.DealerFacts(
            timestamp=at or review.decided_at or review.created_at,
            kind=kind,
            dealer_id=review.dealer_id,
            evidence=evidence,
            actor_id=actor_id,
            subject_id=review.requester_id,
            review_kind=review.kind,
            review_id=review.id,
        ),
    )


def _record(s: Session, facts: edge_audit.DealerFacts) -> None:
    """The one funnel: ledger the event in ``s``'s transaction (when a ledger is bound), log it.

    An entry that cannot be written raises, and the caller's transaction rolls back with it.
    """
    audit = edge_audit.EdgeAudit.of(s)
    index = audit.record_dealer_in(s, facts) if audit is not None else None
    _log.info(
        "dealer_event",
        kind=facts.kind.value,
        dealer_id=facts.dealer_id,
        actor_id=facts.actor_id,
        subject=facts.subject_id,
        review_id=facts.review_id,
        ledger_index=index,
    )
