"""Vehicles and their lifecycle, from the assembly line to the scrapyard.

The allowed lifecycle edges (anything else raises :class:`IllegalTransition`)::

    built ──► shipped ──► at_dealer ──► activated ──► delivered ──► in_service ──► transferred
                 ▲            │          │    ▲                       ▲    │            │
                 └────────────┘          └────┘                       │    └────────────┤
             (sent on to another dealer)  (re-activation)             └─────────────────┘
                                                                       (a new owner takes over)
    every state except scrapped ──► scrapped (terminal)

Decisions worth knowing:

* ``activated → activated`` is a re-activation (a failed ECU retried, features changed before
  hand-over). It is allowed here; the edge requires dual review before it runs.
* ``at_dealer → shipped``: a car moved to another dealer goes back on the truck.
* ``delivered → transferred`` and ``in_service → transferred``: a change of owner; a transferred
  car returns to ``in_service`` when the new owner is registered (their profiles start empty).
* No other self-edge exists, so a duplicated event is noticed instead of silently absorbed.
* ``scrapped`` is terminal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from forecourt.core.ecu import Ecu, EcuRole
from forecourt.core.errors import DomainValueError, IllegalTransition
from forecourt.core.market import Market
from forecourt.core.vin import Vin


class LifecycleState(StrEnum):
    """Where a vehicle is in its life."""

    BUILT = "built"
    SHIPPED = "shipped"
    AT_DEALER = "at_dealer"
    ACTIVATED = "activated"
    DELIVERED = "delivered"
    IN_SERVICE = "in_service"
    TRANSFERRED = "transferred"
    SCRAPPED = "scrapped"


_S = LifecycleState
ALLOWED_TRANSITIONS: Final[dict[LifecycleState, frozenset[LifecycleState]]] = {
    _S.BUILT: frozenset({_S.SHIPPED, _S.SCRAPPED}),
    _S.SHIPPED: frozenset({_S.AT_DEALER, _S.SCRAPPED}),
    _S.AT_DEALER: frozenset({_S.ACTIVATED, _S.SHIPPED, _S.SCRAPPED}),
    _S.ACTIVATED: frozenset({_S.ACTIVATED, _S.DELIVERED, _S.SCRAPPED}),
    _S.DELIVERED: frozenset({_S.IN_SERVICE, _S.TRANSFERRED, _S.SCRAPPED}),
    _S.IN_SERVICE: frozenset({_S.TRANSFERRED, _S.SCRAPPED}),
    _S.TRANSFERRED: frozenset({_S.IN_SERVICE, _S.SCRAPPED}),
    _S.SCRAPPED: frozenset(),
}

# States in which an activation (first, re-activation or after-sale unlock) may be planned. A car
# still at the plant or on the truck is not at a dealer; a scrapped car never is again.
ACTIVATABLE_STATES: Final = frozenset(
    {_S.AT_DEALER, _S.ACTIVATED, _S.DELIVERED, _S.IN_SERVICE, _S.TRANSFERRED}
)


@dataclass(frozen=True, slots=True)
class VehicleModel:
    """A model line: the option codes it can be ordered with and the ECU hardware per role."""

    code: str
    name: str
    body: str
    standard_options: frozenset[str]
    optional_options: frozenset[str]
    ecu_hardware: tuple[tuple[EcuRole, str], ...]  # role → hardware number fitted in this model
    option_for_role: tuple[tuple[EcuRole, str], ...] = ()  # role fitted only with that option

    def hardware_for(self, role: EcuRole) -> str | None:
        """Hardware number of ``role`` in this model, or ``None`` if the model never has it."""
        return next((hw for r, hw in self.ecu_hardware if r is role), None)


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One car, as the OEM registry knows it (factory configuration and where it is now)."""

    vin: Vin
    model: str
    model_year: int
    plant: str
    build_date: date
    market: Market
    option_codes: frozenset[str]
    ecus: tuple[Ecu, ...]
    state: LifecycleState = LifecycleState.BUILT
    dealer_id: str | None = None
    owner_ref: str | None = None  # opaque reference to the owner in CRM, never personal data

    def __post_init__(self) -> None:
        roles = [ecu.role for ecu in self.ecus]
        if len(roles) != len(set(roles)):
            raise DomainValueError("ecus", "an ECU role is fitted twice")
        addresses = [ecu.logical_address for ecu in self.ecus]
        if len(addresses) != len(set(addresses)):
            raise DomainValueError("ecus", "two ECUs share a logical address")
        if self.vin.model_year is not None and self.vin.model_year != self.model_year:
            raise DomainValueError(
                "model_year",
                f"{self.model_year} disagrees with the VIN's model year {self.vin.model_year}",
            )

    @property
    def roles(self) -> frozenset[EcuRole]:
        """The ECU roles fitted."""
        return frozenset(ecu.role for ecu in self.ecus)

    def ecu(self, role: EcuRole) -> Ecu | None:
        """The ECU with ``role``, or ``None`` if not fitted."""
        return next((ecu for ecu in self.ecus if ecu.role is role), None)

    def can_transition(self, to: LifecycleState) -> bool:
        """Whether ``self.state → to`` is an allowed edge."""
        return to in ALLOWED_TRANSITIONS[self.state]

    def transition(self, to: LifecycleState) -> Vehicle:
        """A copy in state ``to``; raises :class:`IllegalTransition` if the edge is not allowed."""
        if not self.can_transition(to):
            raise IllegalTransition(self.state, to)
        return dataclasses.replace(self, state=to)
