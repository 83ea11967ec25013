"""Versioned compliance profiles; the profile that applies follows the dealer's location.

A dealer's country decides the market whose law applies at the counter (a car sold in the EU is
activated under the EU profile); the newest published version of that market's profile is used,
and the version travels with the activation so an audit knows which rules were applied.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.core import ComplianceProfile, Dealer, Market, from_dict, to_dict
from forecourt.store.registry import ComplianceProfileRow

#: Where a dealer stands decides the market whose rules apply (ISO 3166-1 alpha-2 → market).
_EU = [
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
]
COUNTRY_MARKET: dict[str, Market] = {
    **{country: Market.EU for country in _EU},
    "CN": Market.CN,
    "US": Market.US,
}


def market_of_location(dealer: Dealer) -> Market:
    """The market of the dealer's country (its registered market where the table is silent)."""
    return COUNTRY_MARKET.get(dealer.country, dealer.market)


def publish_profile(session: Session, profile: ComplianceProfile, now: datetime) -> int:
    """Store ``profile`` as the next version of its market; returns that version."""
    latest = session.scalar(
        select(func.max(ComplianceProfileRow.version)).where(
            ComplianceProfileRow.market == profile.market.value
        )
    )
    version = (latest or 0) + 1
    session.add(
        ComplianceProfileRow(
            market=profile.market.value,
            version=version,
            document=to_dict(profile),
            published_at=now,
        )
    )
    return version


def current_profile(session: Session, market: Market) -> tuple[int, ComplianceProfile]:
    row = session.scalars(
        select(ComplianceProfileRow)
        .where(ComplianceProfileRow.market == market.value)
        .order_by(ComplianceProfileRow.version.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        raise _profile_unknown(market)
    return row.version, from_dict(ComplianceProfile, row.document)


def _profile_unknown(market: Market) -> CloudProblem:
    return CloudProblem(
        404,
        ProblemCode.PROFILE_UNKNOWN,
        "Compliance profile unknown",
        f"no compliance profile published for {market.value}",
    )


def profile_for_dealer(session: Session, dealer: Dealer) -> tuple[int, ComplianceProfile]:
    return current_profile(session, market_of_location(dealer))


class ProfileCache:
    """Decoded profile versions. A published version never changes (the next publication is a
    new version), so the newest version is still read from the database on every call and only
    the decoding of its document is shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoded: dict[tuple[str, int], ComplianceProfile] = {}

    def current(self, session: Session, market: Market) -> tuple[int, ComplianceProfile]:
        """The newest published profile of ``market`` (``profile_unknown`` if none)."""
        row = session.execute(
            select(ComplianceProfileRow.version, ComplianceProfileRow.document)
            .where(ComplianceProfileRow.market == market.value)
            .order_by(ComplianceProfileRow.version.desc())
            .limit(1)
        ).one_or_none()
        if row is None:
            raise _profile_unknown(market)
        version, document = row
        key = (market.value, version)
        with self._lock:
            known = self._decoded.get(key)
        if known is None:
            known = from_dict(ComplianceProfile, document)
            with self._lock:
                self._decoded[key] = known
        return version, known

    def for_dealer(self, session: Session, dealer: Dealer) -> tuple[int, ComplianceProfile]:
        return self.current(session, market_of_location(dealer))
