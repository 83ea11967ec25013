"""Features: the functions a car has the hardware for and that activation wakes up.

A feature states what it needs (factory option codes, ECU roles, other features, packages), where
it is offered and whether it is on by default there, which personal data it processes, its licence
terms, and whether enabling it touches the vehicle's type approval (UNECE R156 asks that every
unlock carry that assessment; a paid unlock of a function absent at approval does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from forecourt.core.compliance import DataCategory
from forecourt.core.ecu import EcuRole
from forecourt.core.errors import DomainValueError
from forecourt.core.market import Market
from forecourt.core.package import PackageType

_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")


class LicenceKind(StrEnum):
    """How long an entitlement to a feature lasts once granted."""

    PERPETUAL = "perpetual"
    SUBSCRIPTION = "subscription"
    TRIAL = "trial"


@dataclass(frozen=True, slots=True)
class LicenceTerms:
    """Licence of a feature; ``duration_days`` is ``None`` exactly when perpetual."""

    kind: LicenceKind
    duration_days: int | None = None

    def __post_init__(self) -> None:
        if self.kind is LicenceKind.PERPETUAL:
            if self.duration_days is not None:
                raise DomainValueError("duration_days", "a perpetual licence has no duration")
        elif self.duration_days is None or self.duration_days <= 0:
            raise DomainValueError("duration_days", f"a {self.kind} needs a positive duration")


@dataclass(frozen=True, slots=True)
class MarketOffer:
    """A feature is sold in ``market``; ``default_on`` makes it standard there (no purchase)."""

    market: Market
    default_on: bool


@dataclass(frozen=True, slots=True)
class PackageNeed:
    """A feature works only if the ECU of ``role`` receives a package of ``package_type``."""

    role: EcuRole
    package_type: PackageType


@dataclass(frozen=True, slots=True)
class Feature:
    """A catalog entry. ``code`` is stable and upper-case (``NAV_SUB``), used in tokens and logs."""

    code: str
    name: str
    required_option_codes: frozenset[str]
    required_roles: frozenset[EcuRole]
    depends_on: frozenset[str]
    offers: tuple[MarketOffer, ...]
    data_categories: frozenset[DataCategory]
    licence: LicenceTerms
    affects_type_approval: bool
    cross_border: bool = False  # sends data out of the market's residency region
    package_needs: tuple[PackageNeed, ...] = ()

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise DomainValueError("code", f"{self.code!r} is not an upper-case feature code")
        if self.code in self.depends_on:
            raise DomainValueError("depends_on", f"{self.code} depends on itself")
        if not self.required_roles:
            raise DomainValueError("required_roles", f"{self.code} must run on some ECU")
        markets = [offer.market for offer in self.offers]
        if len(markets) != len(set(markets)):
            raise DomainValueError("offers", f"{self.code} is offered twice in one market")
        for need in self.package_needs:
            if need.role not in self.required_roles:
                raise DomainValueError(
                    "package_needs", f"{self.code} needs a package on {need.role}, not a target"
                )

    def offer(self, market: Market) -> MarketOffer | None:
        """The offer in ``market``, or ``None`` when the feature is not sold there."""
        for offer in self.offers:
            if offer.market is market:
                return offer
        return None

    def standard_in(self, market: Market) -> bool:
        """Whether the feature is on by default (standard equipment) in ``market``."""
        offer = self.offer(market)
        return offer is not None and offer.default_on
