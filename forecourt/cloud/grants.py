"""What each granted feature is bound by: its validity end and the option codes it requires.

One function for every path that signs feature grants (online activation, offline package), so a
grant can never outlive the entitlement it comes from because one path forgot to look: the end of
a feature's grant is the latest end among the car's entitlements to it active at ``now``, or
``None`` (perpetual) when one of them has no end or the feature is standard on the car and no
entitlement is involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from forecourt.core import ActivationPlan, Catalog, Entitlement


@dataclass(frozen=True, slots=True)
class GrantTerms:
    """Per granted feature: ``until`` (``None``: perpetual) and the option codes it requires."""

    until: dict[str, datetime | None]
    requires: dict[str, frozenset[str]]


def grant_terms(
    plan: ActivationPlan, catalog: Catalog, entitlements: Iterable[Entitlement], now: datetime
) -> GrantTerms:
    """The terms of every feature of ``plan`` from the car's ``entitlements`` at ``now``."""
    listed = list(entitlements)
    until: dict[str, datetime | None] = {}
    requires: dict[str, frozenset[str]] = {}
    for code in plan.features:
        ends = [e.valid_until for e in listed if e.feature_code == code and e.is_active_at(now)]
        until[code] = None if not ends or None in ends else max(e for e in ends if e)
        feature = catalog.feature(code)
        requires[code] = feature.required_option_codes if feature else frozenset()
    return GrantTerms(until, requires)


__all__ = ["GrantTerms", "grant_terms"]
