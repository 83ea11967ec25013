"""Dealers (4S stores): where cars are activated and whose market decides the rules applied."""

from __future__ import annotations

import re
from dataclasses import dataclass

from forecourt.core.errors import DomainValueError
from forecourt.core.market import Market

_DEALER_ID = re.compile(r"^[A-Z]{2}-[A-Z0-9-]{2,30}$")


@dataclass(frozen=True, slots=True)
class Dealer:
    """A dealership; ``dealer_id`` (``DE-MUC-01``) names it in certificates, logs, assignments."""

    dealer_id: str
    name: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    market: Market
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if not _DEALER_ID.match(self.dealer_id):
            raise DomainValueError("dealer_id", f"{self.dealer_id!r} is not like 'DE-MUC-01'")
        if not (len(self.country) == 2 and self.country.isalpha() and self.country.isupper()):
            raise DomainValueError("country", f"{self.country!r} is not ISO 3166-1 alpha-2")
        if not -90.0 <= self.latitude <= 90.0:
            raise DomainValueError("latitude", f"{self.latitude} is outside −90…90")
        if not -180.0 <= self.longitude <= 180.0:
            raise DomainValueError("longitude", f"{self.longitude} is outside −180…180")
