"""The one server-side permission check: :func:`require`.

Every edge entry point (console, CLI, workflow) calls it with the resource's dealer, so an
operator of dealer A can never act on dealer B's resources, whatever their role — the edge is
scoped like a dealership, not like hawkBit's gateway token that acts for any device.
"""

from __future__ import annotations

from forecourt.edge.operators.errors import PermissionDenied
from forecourt.edge.operators.model import Operator
from forecourt.edge.operators.roles import Permission, role_has
from forecourt.logging import get_logger

_log = get_logger("edge.operators.authz")


def require(operator: Operator, permission: Permission, dealer_id: str) -> None:
    """Return if ``operator`` may use ``permission`` on a resource of ``dealer_id``; else raise.

    Checks, in order: the account is active, the resource belongs to the operator's dealer, the
    operator's role holds the permission. The refusal is logged and raised as
    :class:`PermissionDenied` with a stable ``reason`` (``inactive``, ``other_dealer``, ``role``).
    """
    reason: str | None = None
    if not operator.active:
        reason = "inactive"
    elif operator.dealer_id != dealer_id:
        reason = "other_dealer"
    elif not role_has(operator.role, permission):
        reason = "role"
    if reason is None:
        return
    _log.warning(
        "permission_denied",
        operator_id=operator.id,
        operator_dealer=operator.dealer_id,
        resource_dealer=dealer_id,
        role=operator.role.value,
        permission=permission.value,
        reason=reason,
    )
    raise PermissionDenied(operator.id, permission.value, reason)
