"""Sales markets: the unit that decides which features are offered and which privacy rules apply.

A vehicle is built for one market; its dealer sells in one market; a compliance profile exists per
market. Add a member here and a profile for it to open a new market.
"""

from __future__ import annotations

from enum import StrEnum


class Market(StrEnum):
    """A sales market with its own feature offer and compliance profile."""

    EU = "EU"
    CN = "CN"
    US = "US"
