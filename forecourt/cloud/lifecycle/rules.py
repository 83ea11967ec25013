"""What may happen to a car after the dealer, as pure rules over core values (no I/O).

The edges themselves are the domain's (:data:`~forecourt.core.ALLOWED_TRANSITIONS`); these rules
add who the owner is on each edge and which rights end with an owner:

* ``activated → delivered`` (handover) names the first owner: ``owner_ref`` is required unless
  the owner was registered before delivery.
* ``delivered → in_service`` keeps the owner; ``transferred → in_service`` registers the new
  owner (required unless the transfer already named them).
* ``delivered | in_service → transferred`` (change of owner, trade-in) ends the previous
  owner's *personal* rights: subscriptions (purchases with an end), trials and fleet grants that
  are still in effect are revoked with the reason ``owner-changed``. Standard equipment and
  perpetual purchases belong to the car and stay. A new owner, when named, must differ.
* ``→ scrapped`` ends every right still in effect (reason ``vehicle-scrapped``).
* A service visit changes no state; it is recorded in ``delivered``, ``in_service`` or
  ``transferred``, with the workshop's dealer id.
* An owner is set outside a transition only before delivery or while ``transferred``: once a car
  is with its owner, a different owner comes only through a transfer, so no right of the previous
  owner survives by a side door.

Every refusal is a :class:`LifecycleRefused` with a stable ``code`` (``transition`` for an edge
the domain forbids, ``owner`` for an owner rule), so the service maps it to one problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from forecourt.core import ALLOWED_TRANSITIONS, Entitlement, EntitlementSource, LifecycleState
from forecourt.core import EntitlementState as _E
from forecourt.ledger.entry import EventKind

_S = LifecycleState

#: States in which a service visit is recorded (the car is with an owner or a trader).
SERVICEABLE_STATES: Final = frozenset({_S.DELIVERED, _S.IN_SERVICE, _S.TRANSFERRED})
#: States in which the owner may be set without a transition.
OWNER_SETTABLE_STATES: Final = frozenset(
    {_S.BUILT, _S.SHIPPED, _S.AT_DEALER, _S.ACTIVATED, _S.TRANSFERRED}
)

OWNER_CHANGED: Final = "owner-changed"
VEHICLE_SCRAPPED: Final = "vehicle-scrapped"
SERVICE_VISIT: Final = "service-visit"


class RefusalKind(StrEnum):
    TRANSITION = "transition"
    OWNER = "owner"


class LifecycleRefused(Exception):
    """A lifecycle change the rules forbid; ``kind`` says which rule, ``detail`` names no owner."""

    def __init__(self, kind: RefusalKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a permitted change does: the new state and owner, the ledger kind of its record,
    and why rights end (``None``: none end)."""

    state: LifecycleState
    owner_ref: str | None
    kind: EventKind
    ends_rights: str | None = None

    @property
    def owner_changed(self) -> bool:
        return self.kind is EventKind.OWNERSHIP_CHANGE


def plan_transition(
    state: LifecycleState, owner_ref: str | None, to: LifecycleState, new_owner: str | None
) -> Outcome:
    """The outcome of moving a car in ``state`` (owned by ``owner_ref``) to ``to``."""
    if to not in ALLOWED_TRANSITIONS[state]:
        raise LifecycleRefused(
            RefusalKind.TRANSITION, f"a {state.value} car cannot become {to.value}"
        )
    if to is _S.DELIVERED:
        first_owner = new_owner or owner_ref
        if first_owner is None:
            raise LifecycleRefused(RefusalKind.OWNER, "a handover names the first owner")
        return Outcome(to, first_owner, EventKind.OWNERSHIP_CHANGE)
    if to is _S.TRANSFERRED:
        if new_owner is not None and new_owner == owner_ref:
            raise LifecycleRefused(RefusalKind.OWNER, "the new owner is the previous owner")
        return Outcome(to, new_owner, EventKind.OWNERSHIP_CHANGE, ends_rights=OWNER_CHANGED)
    if to is _S.IN_SERVICE and state is _S.TRANSFERRED:
        if new_owner is None and owner_ref is None:
            raise LifecycleRefused(RefusalKind.OWNER, "a transferred car needs its new owner")
        if new_owner is not None and new_owner != owner_ref:
            return Outcome(to, new_owner, EventKind.OWNERSHIP_CHANGE)
        return Outcome(to, owner_ref, EventKind.LIFECYCLE_CHANGE)
    if new_owner is not None and new_owner != owner_ref:
        raise LifecycleRefused(
            RefusalKind.OWNER, f"{state.value} -> {to.value} keeps the owner; transfer the car"
        )
    if to is _S.SCRAPPED:
        return Outcome(to, owner_ref, EventKind.LIFECYCLE_CHANGE, ends_rights=VEHICLE_SCRAPPED)
    return Outcome(to, owner_ref, EventKind.LIFECYCLE_CHANGE)


def plan_owner(state: LifecycleState, owner_ref: str | None, new_owner: str | None) -> Outcome:
    """Setting the owner without a transition (before delivery, or of a transferred car)."""
    if state not in OWNER_SETTABLE_STATES:
        raise LifecycleRefused(
            RefusalKind.TRANSITION,
            f"the owner of a {state.value} car changes only by a transfer",
        )
    if new_owner == owner_ref:
        raise LifecycleRefused(RefusalKind.OWNER, "the owner is already registered")
    return Outcome(state, new_owner, EventKind.OWNERSHIP_CHANGE)


def check_service_visit(state: LifecycleState) -> None:
    if state not in SERVICEABLE_STATES:
        raise LifecycleRefused(
            RefusalKind.TRANSITION, f"a {state.value} car is not with an owner to be serviced"
        )


def rights_that_end(
    entitlements: Sequence[tuple[int, Entitlement]], reason: str, now: datetime
) -> list[tuple[int, Entitlement]]:
    """The entitlements ``reason`` ends: rights still in effect (active or suspended, not past
    their end) that are the previous owner's, or all of them when the car is scrapped."""
    ending = []
    for ident, right in entitlements:
        in_effect = right.state in {_E.ACTIVE, _E.SUSPENDED} and (
            right.valid_until is None or right.valid_until > now
        )
        if in_effect and (reason == VEHICLE_SCRAPPED or is_personal(right)):
            ending.append((ident, right))
    return ending


def is_personal(right: Entitlement) -> bool:
    """Bought for the owner rather than the car: a subscription, a trial, a fleet grant."""
    if right.source is EntitlementSource.PURCHASE:
        return right.valid_until is not None
    return right.source in {EntitlementSource.TRIAL, EntitlementSource.FLEET}
