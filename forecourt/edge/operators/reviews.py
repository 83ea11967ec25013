"""Dual review (four-eyes): which operations need a second operator, and who may be that operator.

State machine of a :class:`Review`::

    pending ──approve──▶ approved ──mark_executed──▶ executed
       │  └──reject───▶ rejected
       └──(expires_at passes)──▶ expired

Rules, each enforced by :class:`~forecourt.edge.operators.review_service.ReviewService`:

* the reviewer is never the requester, whatever their role (hawkBit lets a creator holding the
  approve permission skip approval; we do not) — the database refuses it too;
* the reviewer belongs to the request's dealer and holds a role listed in :data:`APPROVER_ROLES`;
* approving needs a fresh TOTP code from the reviewer (step-up), consumed like a login code;
* a request past ``expires_at`` can no longer be approved;
* an approved request is executed once: ``mark_executed`` succeeds for the first caller only.

Approver table (kind → roles allowed to decide; requester permission in brackets):

==================  ==========================================  ==========================
kind                approver roles                              requester needs
==================  ==========================================  ==========================
batch_activation    service_manager, dealer_admin               activation.batch.request
foreign_vehicle     service_manager, dealer_admin               activation.start
reactivation        senior_technician, service_manager, admin   activation.start
feature_revocation  senior_technician, service_manager, admin   feature.revoke.request
offline_use         senior_technician, service_manager, admin   offline.use.request
override            service_manager, dealer_admin               override.request
operator_privilege  service_manager, dealer_admin               operator.manage
==================  ==========================================  ==========================

Batch activation, a car not assigned to this dealer and overrides widen what one action can do
or bypass a check, so they need management; the others are routine risks a senior technician can
judge at the car. ``operator_privilege`` is a new account with, or a promotion to, a
reviewer-capable role (:data:`REVIEWER_CAPABLE`): without it one dealer admin could mint the
second pair of eyes of every other review. Its payload names the account (``subject_id``), who is
never its own reviewer either; approving it applies the role in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from forecourt.edge.operators.roles import Permission, Role


class ReviewKind(StrEnum):
    BATCH_ACTIVATION = "batch_activation"
    FOREIGN_VEHICLE = "foreign_vehicle"  # a car not assigned to this dealer
    REACTIVATION = "reactivation"
    FEATURE_REVOCATION = "feature_revocation"
    OFFLINE_USE = "offline_use"
    OVERRIDE = "override"
    OPERATOR_PRIVILEGE = "operator_privilege"  # a reviewer-capable role for an account


class ReviewState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    EXECUTED = "executed"


_MANAGEMENT = frozenset({Role.SERVICE_MANAGER, Role.DEALER_ADMIN})
_REVIEWERS = frozenset({Role.SENIOR_TECHNICIAN, Role.SERVICE_MANAGER, Role.DEALER_ADMIN})

#: Roles that may approve some review: granting one is itself an ``operator_privilege`` review.
REVIEWER_CAPABLE: frozenset[Role] = _REVIEWERS

#: The payload key naming the operator a request is about; that operator never decides it.
SUBJECT_KEY = "subject_id"

#: kind → roles that may approve or reject it (always also: not the requester, same dealer).
APPROVER_ROLES: Mapping[ReviewKind, frozenset[Role]] = MappingProxyType(
    {
        ReviewKind.BATCH_ACTIVATION: _MANAGEMENT,
        ReviewKind.FOREIGN_VEHICLE: _MANAGEMENT,
        ReviewKind.REACTIVATION: _REVIEWERS,
        ReviewKind.FEATURE_REVOCATION: _REVIEWERS,
        ReviewKind.OFFLINE_USE: _REVIEWERS,
        ReviewKind.OVERRIDE: _MANAGEMENT,
        ReviewKind.OPERATOR_PRIVILEGE: _MANAGEMENT,
    }
)

#: kind → the permission the requester (and later the executor) must hold.
REQUEST_PERMISSION: Mapping[ReviewKind, Permission] = MappingProxyType(
    {
        ReviewKind.BATCH_ACTIVATION: Permission.ACTIVATION_BATCH_REQUEST,
        ReviewKind.FOREIGN_VEHICLE: Permission.ACTIVATION_START,
        ReviewKind.REACTIVATION: Permission.ACTIVATION_START,
        ReviewKind.FEATURE_REVOCATION: Permission.FEATURE_REVOKE_REQUEST,
        ReviewKind.OFFLINE_USE: Permission.OFFLINE_USE_REQUEST,
        ReviewKind.OVERRIDE: Permission.OVERRIDE_REQUEST,
        ReviewKind.OPERATOR_PRIVILEGE: Permission.OPERATOR_MANAGE,
    }
)


def canonical_payload(payload: Mapping[str, Any]) -> bytes:
    """The payload as canonical JSON (sorted keys, no spaces): what its digest is taken over."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def payload_digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_payload(payload)).hexdigest()


@dataclass(frozen=True, slots=True)
class Review:
    """A review request as stored; both the requester and the reviewer are always recorded."""

    id: str
    dealer_id: str
    kind: ReviewKind
    state: ReviewState
    payload: Mapping[str, Any]
    payload_sha256: str
    reason: str
    requester_id: str
    reviewer_id: str | None
    executor_id: str | None
    decision_note: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    executed_at: datetime | None
