"""Entitlements: the right of one vehicle to one feature, for a time.

States follow Keygen's licence states, with the clock kept out of the object: ``is_active_at(t)``
asks about a given instant, so the same record answers for "now", for an offline package's
validity window, or for an audit of the past. A subscription's clock starts when the entitlement
is granted (at delivery), not when the car left the factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from forecourt.core.errors import DomainValueError
from forecourt.core.vin import Vin


class EntitlementSource(StrEnum):
    """Why the vehicle has the right."""

    STANDARD = "standard"  # part of the vehicle as sold
    PURCHASE = "purchase"  # bought (perpetual or subscription)
    TRIAL = "trial"  # time-limited trial
    FLEET = "fleet"  # granted by a fleet contract


class EntitlementState(StrEnum):
    """Administrative state; expiry by time is computed, ``EXPIRED`` records it once noticed."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Entitlement:
    """Vehicle ``vin`` may use ``feature_code`` in ``[valid_from, valid_until)``."""

    vin: Vin
    feature_code: str
    source: EntitlementSource
    valid_from: datetime
    valid_until: datetime | None
    state: EntitlementState = EntitlementState.ACTIVE

    def __post_init__(self) -> None:
        if self.valid_from.tzinfo is None:
            raise DomainValueError("valid_from", "must be timezone-aware")
        if self.valid_until is not None:
            if self.valid_until.tzinfo is None:
                raise DomainValueError("valid_until", "must be timezone-aware")
            if self.valid_until <= self.valid_from:
                raise DomainValueError("valid_until", "must be after valid_from")

    def is_active_at(self, at: datetime) -> bool:
        """True when the state is active and ``at`` lies in ``[valid_from, valid_until)``."""
        if at.tzinfo is None:
            raise DomainValueError("at", "must be timezone-aware")
        if self.state is not EntitlementState.ACTIVE or at < self.valid_from:
            return False
        return self.valid_until is None or at < self.valid_until

    def why_inactive_at(self, at: datetime) -> str | None:
        """A short reason when :meth:`is_active_at` is false, else ``None``."""
        if self.is_active_at(at):
            return None
        if self.state is not EntitlementState.ACTIVE:
            return f"entitlement is {self.state}"
        if at < self.valid_from:
            return f"entitlement starts {self.valid_from.isoformat()}"
        assert self.valid_until is not None
        return f"entitlement ended {self.valid_until.isoformat()}"
