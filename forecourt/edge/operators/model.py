"""What callers see of an operator: an immutable value, detached from the database row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forecourt.edge.operators.roles import Role


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator as known at the moment it was loaded; holds no secret."""

    id: str
    dealer_id: str
    username: str
    display_name: str
    role: Role
    active: bool
    totp_enrolled: bool
    locked_until: datetime | None = None
    #: A reviewer-capable role requested for this account, waiting for a second operator.
    pending_role: Role | None = None
    #: A new account whose role awaits approval: it stays inactive until approved.
    awaiting_approval: bool = False
