"""Reviewer-capable roles need a second operator: the ``operator_privilege`` review's effects.

Granting senior technician, service manager or dealer admin (a new account with that role, or a
promotion) opens an ``operator_privilege`` review instead of taking effect. Until a qualified
operator who is neither the requester nor the account approves it with a fresh TOTP code:

* a new account stays inactive (``awaiting_approval``): it can enrol but not sign in, and it is not
  pushed to the cloud;
* a promoted account keeps its old role (``pending_role`` holds the requested one).

Approval applies the role in the transaction that approves, and moves the request to ``executed``
(the change ran exactly once); rejection removes a never-approved new account (it never held any
power) or drops the pending promotion. Functions here run inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from forecourt.edge.operators.repository import OperatorRepository, SessionRepository
from forecourt.edge.operators.reviews import (
    SUBJECT_KEY,
    ReviewKind,
    ReviewState,
    canonical_payload,
    payload_digest,
)
from forecourt.edge.operators.roles import Role
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOperator, EdgeReviewRequest

_log = get_logger("edge.operators.privilege")

CHANGE_CREATE = "create"
CHANGE_PROMOTE = "promote"


def new_review_row(
    *,
    kind: ReviewKind,
    payload: Mapping[str, Any],
    dealer_id: str,
    requester_id: str,
    reason: str,
    now: datetime,
    ttl: timedelta,
) -> EdgeReviewRequest:
    """A pending review request row (the one place such a row is built)."""
    canonical_payload(payload)  # refuses what is not plain JSON before anything is stored
    return EdgeReviewRequest(
        id=str(uuid.uuid4()),
        dealer_id=dealer_id,
        kind=kind.value,
        state=ReviewState.PENDING.value,
        payload=dict(payload),
        payload_sha256=payload_digest(payload),
        reason=reason,
        requester_id=requester_id,
        reviewer_id=None,
        executor_id=None,
        decision_note=None,
        created_at=now,
        expires_at=now + ttl,
        decided_at=None,
        executed_at=None,
    )


def privilege_payload(subject: EdgeOperator, role: Role, change: str) -> dict[str, str]:
    """What the reviewer approves: which account, which role, new account or promotion."""
    return {
        SUBJECT_KEY: subject.id,
        "username": subject.username,
        "role": role.value,
        "change": change,
        "previous_role": subject.role if change == CHANGE_PROMOTE else "",
    }


def apply_approved(s: Session, review: EdgeReviewRequest, now: datetime) -> str:
    """Give the account its approved role; returns the subject id. Caller holds the transaction."""
    payload = review.payload
    row = OperatorRepository(s).get(str(payload[SUBJECT_KEY]), for_update=True)
    if row is None or row.pending_role != payload["role"]:
        # The account changed since the request (removed, or another request replaced it).
        raise LookupError("the account no longer awaits this role")
    row.role = str(payload["role"])
    row.pending_role = None
    if payload["change"] == CHANGE_CREATE:
        row.awaiting_approval = False
        row.active = True
    else:
        SessionRepository(s).revoke_all_for(row.id, now, "role_changed")
    _log.info(
        "operator_privilege_granted",
        operator_id=row.id,
        role=row.role,
        request_id=review.id,
        reviewer_id=review.reviewer_id,
    )
    return row.id


def apply_rejected(s: Session, review: EdgeReviewRequest) -> None:
    """Drop the pending role; a new account that was never approved is removed."""
    payload = review.payload
    row = OperatorRepository(s).get(str(payload[SUBJECT_KEY]), for_update=True)
    if row is None or row.pending_role != payload["role"]:
        return
    if payload["change"] == CHANGE_CREATE and row.awaiting_approval:
        s.delete(row)
        _log.info("operator_removed_unapproved", operator_id=row.id, request_id=review.id)
        return
    row.pending_role = None
    _log.info("operator_privilege_refused", operator_id=row.id, request_id=review.id)
