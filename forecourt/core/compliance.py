"""Regional privacy rules (compliance profiles) and the customer's recorded consent.

A :class:`ComplianceProfile` says, per market, where data lives and how each category of personal
data may be processed; a :class:`ConsentRecord` is what the customer chose on the console, tied to
the exact notice version shown (as Fides does). Planning an activation reads both: a feature that
processes an opt-in category needs a matching grant, one that touches a forbidden category is
refused, and a feature that sends data out of the residency region follows the cross-border rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from forecourt.core.errors import DomainValueError
from forecourt.core.market import Market


class DataCategory(StrEnum):
    """Categories of personal data a connected car processes (EDPB connected-vehicle guidance)."""

    LOCATION = "location"
    TRAJECTORY = "trajectory"
    AUDIO_VOICE = "audio_voice"
    VIDEO_CAMERA = "video_camera"
    BIOMETRICS = "biometrics"
    DRIVING_BEHAVIOUR = "driving_behaviour"
    VEHICLE_DIAGNOSTICS = "vehicle_diagnostics"
    CONTACT_DATA = "contact_data"
    USAGE = "usage"


class ConsentMode(StrEnum):
    """How the law of a market lets a category (or a cross-border transfer) be processed."""

    OPT_IN = "opt_in"  # only after an explicit grant for the current notice
    OPT_OUT = "opt_out"  # allowed after notice unless the customer objected
    NOTICE_ONLY = "notice_only"  # allowed once the notice has been shown
    FORBIDDEN = "forbidden"  # never, whatever the customer says


class DataRegion(StrEnum):
    """Where data must be stored and processed (data residency)."""

    EU = "eu"
    CN = "cn"
    US = "us"


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """The rule for one data category in one market."""

    category: DataCategory
    mode: ConsentMode
    default_on: bool
    separate_consent: bool = False  # must be asked on its own, never bundled (CN sensitive data)

    def __post_init__(self) -> None:
        if self.mode is ConsentMode.FORBIDDEN and self.default_on:
            raise DomainValueError("default_on", f"{self.category}: forbidden cannot default on")
        if self.mode is ConsentMode.OPT_IN and self.default_on:
            raise DomainValueError("default_on", f"{self.category}: opt-in cannot default on")


@dataclass(frozen=True, slots=True)
class ComplianceProfile:
    """Privacy rules of one market. Categories without a rule are treated as opt-in."""

    market: Market
    residency: DataRegion
    rules: tuple[CategoryRule, ...]
    cross_border_mode: ConsentMode
    retention_days: int
    notice_version: str
    languages: tuple[str, ...]

    def __post_init__(self) -> None:
        seen = [rule.category for rule in self.rules]
        if len(seen) != len(set(seen)):
            raise DomainValueError("rules", "a data category has more than one rule")
        if self.retention_days <= 0:
            raise DomainValueError("retention_days", "must be positive")
        if not self.notice_version:
            raise DomainValueError("notice_version", "must not be empty")
        if not self.languages:
            raise DomainValueError("languages", "at least one notice language is needed")

    def rule(self, category: DataCategory) -> CategoryRule:
        """The rule for ``category``; opt-in, off by default, when the profile names none."""
        for rule in self.rules:
            if rule.category is category:
                return rule
        return CategoryRule(category, ConsentMode.OPT_IN, default_on=False)

    def permits(self, category: DataCategory, consent: ConsentRecord | None) -> bool:
        """Whether ``category`` may be processed given ``consent`` (``None``: nothing recorded)."""
        return self.refusal(category, consent) is None

    def refusal(self, category: DataCategory, consent: ConsentRecord | None) -> str | None:
        """Why ``category`` may not be processed, or ``None`` when it may."""
        rule = self.rule(category)
        return self._mode_refusal(rule.mode, consent, consent.choice(category) if consent else None)

    def cross_border_refusal(self, consent: ConsentRecord | None) -> str | None:
        """Why data may not leave the residency region, or ``None`` when it may."""
        granted = consent.cross_border if consent else None
        return self._mode_refusal(self.cross_border_mode, consent, granted)

    def _mode_refusal(
        self, mode: ConsentMode, consent: ConsentRecord | None, granted: bool | None
    ) -> str | None:
        if mode is ConsentMode.FORBIDDEN:
            return "forbidden in this market"
        if consent is None:
            return "no notice shown and no consent recorded"
        if consent.notice_version != self.notice_version:
            return (
                f"consent was given for notice {consent.notice_version!r}, "
                f"current notice is {self.notice_version!r}"
            )
        if mode is ConsentMode.OPT_IN and granted is not True:
            return "opt-in consent not granted"
        if mode is ConsentMode.OPT_OUT and granted is False:
            return "customer opted out"
        return None

    def effective_states(
        self, consent: ConsentRecord | None
    ) -> tuple[tuple[DataCategory, bool], ...]:
        """Per category, whether processing is on: the state the car is configured with."""
        states: list[tuple[DataCategory, bool]] = []
        for category in DataCategory:
            rule = self.rule(category)
            if not self.permits(category, consent):
                on = False
            elif rule.mode is ConsentMode.OPT_IN:
                on = True
            else:
                choice = consent.choice(category) if consent else None
                on = rule.default_on if choice is None else choice
            states.append((category, on))
        return tuple(states)


@dataclass(frozen=True, slots=True)
class ConsentChoice:
    """The customer's answer for one data category."""

    category: DataCategory
    granted: bool


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """What the customer chose, on which notice, when. A withdrawal is a new record, never an edit.

    ``choices`` holds at most one answer per category; a category without an answer was not asked.
    ``cross_border`` is the answer to the separate question about transfers out of the residency
    region (``None``: not asked).
    """

    notice_version: str
    captured_at: datetime
    choices: tuple[ConsentChoice, ...] = field(default_factory=tuple)
    cross_border: bool | None = None

    def __post_init__(self) -> None:
        categories = [choice.category for choice in self.choices]
        if len(categories) != len(set(categories)):
            raise DomainValueError("choices", "a data category is answered twice")
        if self.captured_at.tzinfo is None:
            raise DomainValueError("captured_at", "must be timezone-aware")

    def choice(self, category: DataCategory) -> bool | None:
        """The answer for ``category``, or ``None`` if it was not asked."""
        for choice in self.choices:
            if choice.category is category:
                return choice.granted
        return None
