"""Roles and the permission matrix: the one table that says who may do what at a dealership.

The matrix is written permission → roles, so a reviewer reading one line sees everyone who holds
that power. Least privilege: the auditor reads and never changes; technicians do the daily work but
request (never approve) risky operations; approving is reserved to reviewer roles. What a second
operator must approve, and with which role, is in :mod:`forecourt.edge.operators.reviews`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    TECHNICIAN = "technician"
    SENIOR_TECHNICIAN = "senior_technician"  # the day-to-day reviewer
    SERVICE_MANAGER = "service_manager"
    DEALER_ADMIN = "dealer_admin"
    AUDITOR = "auditor"  # read-only


class Permission(StrEnum):
    VEHICLE_READ = "vehicle.read"
    ACTIVATION_START = "activation.start"
    ACTIVATION_BATCH_REQUEST = "activation.batch.request"
    REVIEW_READ = "review.read"
    REVIEW_APPROVE = "review.approve"
    OPERATOR_MANAGE = "operator.manage"
    OFFLINE_USE_REQUEST = "offline.use.request"
    FEATURE_REVOKE_REQUEST = "feature.revoke.request"
    OVERRIDE_REQUEST = "override.request"
    AUDIT_READ = "audit.read"
    CONSENT_RECORD = "consent.record"


_T = Role.TECHNICIAN
_ST = Role.SENIOR_TECHNICIAN
_SM = Role.SERVICE_MANAGER
_DA = Role.DEALER_ADMIN
_AU = Role.AUDITOR

#: permission → the roles that hold it. Nothing else grants a permission.
PERMISSION_MATRIX: Mapping[Permission, frozenset[Role]] = MappingProxyType(
    {
        Permission.VEHICLE_READ: frozenset({_T, _ST, _SM, _DA, _AU}),
        Permission.ACTIVATION_START: frozenset({_T, _ST, _SM, _DA}),
        Permission.ACTIVATION_BATCH_REQUEST: frozenset({_ST, _SM, _DA}),
        Permission.REVIEW_READ: frozenset({_T, _ST, _SM, _DA, _AU}),
        Permission.REVIEW_APPROVE: frozenset({_ST, _SM, _DA}),
        Permission.OPERATOR_MANAGE: frozenset({_DA}),
        Permission.OFFLINE_USE_REQUEST: frozenset({_T, _ST, _SM, _DA}),
        Permission.FEATURE_REVOKE_REQUEST: frozenset({_ST, _SM, _DA}),
        Permission.OVERRIDE_REQUEST: frozenset({_SM, _DA}),
        Permission.AUDIT_READ: frozenset({_SM, _DA, _AU}),
        Permission.CONSENT_RECORD: frozenset({_T, _ST, _SM, _DA}),
    }
)


def role_has(role: Role, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission`` according to :data:`PERMISSION_MATRIX`."""
    return role in PERMISSION_MATRIX[permission]


def permissions_of(role: Role) -> frozenset[Permission]:
    """Every permission ``role`` holds (the console shows actions by it, never decides)."""
    return frozenset(p for p, roles in PERMISSION_MATRIX.items() if role in roles)
