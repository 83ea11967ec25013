"""Operator management for dealer admins: list, add (one-time enrolment code), role, (de)activate.

Shared by the JSON API and the console pages so that both check the same way: every function
runs ``require(actor, operator.manage, <this console's dealer>)`` before it calls the operator
service, which checks again against the account's own dealer. An account of another dealer is
therefore refused even when its id is known. Creating or promoting to a reviewer-capable role does
not take effect here: the service opens an ``operator_privilege`` review that appears on the
Reviews page, to be approved by a second qualified operator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forecourt.edge.app.context import ConsoleContext
from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.edge.operators import NewOperator, Operator, Permission, Role, require
from forecourt.logging import get_logger

_log = get_logger("edge.app.accounts")

#: What the console shows for each role (the value stays in the JSON for machines).
ROLE_LABELS = {
    Role.TECHNICIAN: "Technician",
    Role.SENIOR_TECHNICIAN: "Senior technician",
    Role.SERVICE_MANAGER: "Service manager",
    Role.DEALER_ADMIN: "Dealer administrator",
    Role.AUDITOR: "Auditor (read-only)",
}


def account_state(operator: Operator, now: datetime) -> str:
    """One word for the list: what the account can do right now."""
    if operator.awaiting_approval:
        return "awaiting_review"
    if not operator.active:
        return "deactivated"
    if operator.locked_until is not None and operator.locked_until > now:
        return "locked"
    if not operator.totp_enrolled:
        return "not_enrolled"
    return "active"


def account_json(operator: Operator, now: datetime) -> dict[str, Any]:
    """An operator as the management list shows it; never a secret or a code."""
    return {
        "id": operator.id,
        "username": operator.username,
        "display_name": operator.display_name,
        "role": operator.role.value,
        "role_label": ROLE_LABELS[operator.role],
        "pending_role": operator.pending_role.value if operator.pending_role else None,
        "pending_role_label": ROLE_LABELS[operator.pending_role] if operator.pending_role else None,
        "state": account_state(operator, now),
        "active": operator.active,
        "totp_enrolled": operator.totp_enrolled,
        "locked_until": operator.locked_until.isoformat() if operator.locked_until else None,
    }


def new_operator_json(created: NewOperator, now: datetime) -> dict[str, Any]:
    """The answer to an add, the one place the enrolment code is ever shown."""
    return {
        "operator": account_json(created.operator, now),
        "enrolment_code": created.enrolment_code,
        "enrolment_expires_at": created.enrolment_expires_at.isoformat(),
        "review_id": created.review_id,
        "awaiting_review": created.review_id is not None,
    }


def _require_manage(ctx: ConsoleContext, actor: Operator) -> None:
    require(actor, Permission.OPERATOR_MANAGE, ctx.services.dealer_id)


def parse_role(value: str) -> Role:
    """The role a form or body names, or a ``validation_failed`` problem naming the choices."""
    try:
        return Role(value)
    except ValueError:
        raise ConsoleProblem(
            422,
            ProblemCode.VALIDATION_FAILED,
            "Unknown role",
            f"role must be one of {', '.join(r.value for r in Role)}",
        ) from None


def list_accounts(ctx: ConsoleContext, actor: Operator) -> list[dict[str, Any]]:
    _require_manage(ctx, actor)
    operators = ctx.services.operators.list_operators(actor, ctx.services.dealer_id)
    now = ctx.services.clock()
    return [account_json(o, now) for o in operators]


def add_account(
    ctx: ConsoleContext,
    actor: Operator,
    *,
    username: str,
    display_name: str,
    role: Role,
    reason: str,
) -> NewOperator:
    _require_manage(ctx, actor)
    created = ctx.services.operators.create_operator(
        actor,
        dealer_id=ctx.services.dealer_id,
        username=username,
        display_name=display_name,
        role=role,
        reason=reason,
    )
    _log.info(
        "console_operator_added",
        operator_id=created.operator.id,
        role=role.value,
        by=actor.id,
        review_id=created.review_id,
    )
    return created


def change_role(
    ctx: ConsoleContext, actor: Operator, operator_id: str, role: Role, reason: str
) -> Operator:
    _require_manage(ctx, actor)
    return ctx.services.operators.set_role(actor, operator_id, role, reason=reason)


def set_active(ctx: ConsoleContext, actor: Operator, operator_id: str, active: bool) -> Operator:
    _require_manage(ctx, actor)
    if actor.id == operator_id and not active:
        raise ConsoleProblem(
            409,
            ProblemCode.OPERATION_REFUSED,
            "Cannot deactivate yourself",
            "another dealer administrator must deactivate your account",
        )
    return ctx.services.operators.set_active(actor, operator_id, active)
