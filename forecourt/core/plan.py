"""Activation planning: what each ECU of one car must receive, or every reason why not.

:func:`plan_activation` is the whole authorisation decision of the domain, without I/O: the cloud
calls it online, the offline-package issuer calls it ahead of time, tests call it directly.

Rules, in the words a technician would use:

* The car must be in an activatable lifecycle state and the profile must be its market's.
* A requested feature must exist, be offered in the car's market, have its option codes and ECU
  roles fitted, be entitled at ``now`` (unless standard in the market), be allowed by the privacy
  rules for every data category it processes (opt-in needs a grant on the current notice, forbidden
  refuses) and for cross-border transfer if it does one, find a compatible package for every
  package it needs, and have all its dependencies planned too. Dependencies are requested
  implicitly, so their own failures are reported as well.
* Features standard in the market are added without being asked; one that cannot be (no hardware,
  no consent, ...) is *withheld* with its reasons instead of failing the whole activation.
* Every failing reason is reported at once, sorted, each with a stable ``code`` (unlike a
  first-failure-wins validator, a technician fixes everything in one visit).
* Per ECU, for each package name, the newest version fitting its hardware number, the model and the
  market; language packs for the market's notice languages; map packs only when a planned feature
  on that ECU needs one.

Outputs are sorted (features by code, ECUs by logical address, packages by name) so the same inputs
give the same plan, byte for byte, wherever it is computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Final

from forecourt.core.catalog import Catalog
from forecourt.core.compliance import (
    ComplianceProfile,
    ConsentMode,
    ConsentRecord,
    DataCategory,
    DataRegion,
)
from forecourt.core.ecu import EcuRole
from forecourt.core.entitlement import Entitlement
from forecourt.core.errors import DomainValueError
from forecourt.core.feature import Feature
from forecourt.core.market import Market
from forecourt.core.package import PackageType, SoftwarePackage
from forecourt.core.vehicle import ACTIVATABLE_STATES, LifecycleState, Vehicle
from forecourt.core.vin import Vin

# Delivered to every ECU they fit; other types (maps) only when a planned feature needs them.
BASELINE_PACKAGE_TYPES: Final = frozenset(
    {PackageType.OS, PackageType.CONFIG, PackageType.COMPLIANCE, PackageType.LANGUAGE}
)


class RefusalCode(StrEnum):
    """Stable codes of refusal reasons: APIs, logs and the console key on these."""

    WRONG_LIFECYCLE_STATE = "wrong_lifecycle_state"
    PROFILE_MARKET_MISMATCH = "profile_market_mismatch"
    UNKNOWN_FEATURE = "unknown_feature"
    NOT_OFFERED_IN_MARKET = "not_offered_in_market"
    HARDWARE_MISSING = "hardware_missing"
    NOT_ENTITLED = "not_entitled"
    DEPENDENCY_MISSING = "dependency_missing"
    CONSENT_MISSING = "consent_missing"
    CONSENT_FORBIDDEN = "consent_forbidden"
    NO_COMPATIBLE_PACKAGE = "no_compatible_package"


@dataclass(frozen=True, slots=True)
class RefusalReason:
    """One reason an activation cannot go ahead. ``feature`` is ``None`` for whole-car reasons."""

    code: ClassVar[RefusalCode]
    feature: str | None

    @property
    def message(self) -> str:
        """A sentence for a technician."""
        raise NotImplementedError

    def sort_key(self) -> tuple[str, str, str]:
        """Whole-car reasons first, then by feature, code and message."""
        return (self.feature or "", self.code.value, self.message)

    def to_dict(self) -> dict[str, object]:
        """JSON form: code, feature, message."""
        return {"code": self.code.value, "feature": self.feature, "message": self.message}


@dataclass(frozen=True, slots=True)
class WrongLifecycleState(RefusalReason):
    """The car is not in a state where it can be activated (still at the plant, scrapped, ...)."""

    code: ClassVar[RefusalCode] = RefusalCode.WRONG_LIFECYCLE_STATE
    state: LifecycleState

    @property
    def message(self) -> str:
        allowed = ", ".join(sorted(s.value for s in ACTIVATABLE_STATES))
        return f"vehicle is {self.state.value}; activation needs one of: {allowed}"


@dataclass(frozen=True, slots=True)
class ProfileMarketMismatch(RefusalReason):
    """The compliance profile handed in is not the one of the car's market."""

    code: ClassVar[RefusalCode] = RefusalCode.PROFILE_MARKET_MISMATCH
    vehicle_market: Market
    profile_market: Market

    @property
    def message(self) -> str:
        return (
            f"vehicle is sold in {self.vehicle_market.value} "
            f"but the {self.profile_market.value} profile was given"
        )


@dataclass(frozen=True, slots=True)
class UnknownFeature(RefusalReason):
    """The catalog has no feature with that code."""

    code: ClassVar[RefusalCode] = RefusalCode.UNKNOWN_FEATURE

    @property
    def message(self) -> str:
        return f"no feature {self.feature!r} in the catalog"


@dataclass(frozen=True, slots=True)
class NotOfferedInMarket(RefusalReason):
    """The feature is not sold in the car's market."""

    code: ClassVar[RefusalCode] = RefusalCode.NOT_OFFERED_IN_MARKET
    market: Market

    @property
    def message(self) -> str:
        return f"{self.feature} is not offered in {self.market.value}"


@dataclass(frozen=True, slots=True)
class HardwareMissing(RefusalReason):
    """The car's factory configuration lacks option codes or ECUs the feature needs."""

    code: ClassVar[RefusalCode] = RefusalCode.HARDWARE_MISSING
    missing_option_codes: tuple[str, ...]
    missing_roles: tuple[EcuRole, ...]

    @property
    def message(self) -> str:
        parts = []
        if self.missing_option_codes:
            parts.append("option codes " + ", ".join(self.missing_option_codes))
        if self.missing_roles:
            parts.append("ECUs " + ", ".join(role.value for role in self.missing_roles))
        return f"{self.feature} needs {' and '.join(parts)}, not fitted"


@dataclass(frozen=True, slots=True)
class NotEntitled(RefusalReason):
    """No entitlement of this car to this feature is active at the planning instant."""

    code: ClassVar[RefusalCode] = RefusalCode.NOT_ENTITLED
    detail: str

    @property
    def message(self) -> str:
        return f"{self.feature} is not entitled: {self.detail}"


@dataclass(frozen=True, slots=True)
class DependencyMissing(RefusalReason):
    """A feature this one depends on cannot be planned."""

    code: ClassVar[RefusalCode] = RefusalCode.DEPENDENCY_MISSING
    dependency: str

    @property
    def message(self) -> str:
        return f"{self.feature} depends on {self.dependency}, which cannot be activated"


@dataclass(frozen=True, slots=True)
class ConsentMissing(RefusalReason):
    """The privacy rules need a consent (or a shown notice) that is not recorded.

    ``category`` is ``None`` for the cross-border transfer question.
    """

    code: ClassVar[RefusalCode] = RefusalCode.CONSENT_MISSING
    category: DataCategory | None
    detail: str

    @property
    def message(self) -> str:
        what = self.category.value if self.category else "cross-border transfer"
        return f"{self.feature} processes {what}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ConsentForbidden(RefusalReason):
    """The market forbids processing this category (or the transfer) whatever the customer says."""

    code: ClassVar[RefusalCode] = RefusalCode.CONSENT_FORBIDDEN
    category: DataCategory | None

    @property
    def message(self) -> str:
        what = self.category.value if self.category else "cross-border transfer"
        return f"{self.feature} processes {what}, which this market forbids"


@dataclass(frozen=True, slots=True)
class NoCompatiblePackage(RefusalReason):
    """No package of the needed type fits the ECU's hardware, the model and the market."""

    code: ClassVar[RefusalCode] = RefusalCode.NO_COMPATIBLE_PACKAGE
    role: EcuRole
    package_type: PackageType
    hardware_number: str

    @property
    def message(self) -> str:
        return (
            f"{self.feature} needs a {self.package_type.value} package for {self.role.value} "
            f"hardware {self.hardware_number}; none fits this model and market"
        )


@dataclass(frozen=True, slots=True)
class ComplianceSettings:
    """The privacy configuration the car is given, derived from the profile and the consent."""

    market: Market
    residency: DataRegion
    retention_days: int
    notice_version: str
    languages: tuple[str, ...]
    categories: tuple[tuple[DataCategory, bool], ...]
    cross_border_enabled: bool


@dataclass(frozen=True, slots=True)
class EcuTarget:
    """What one ECU receives: features to unlock, packages to install, privacy settings."""

    role: EcuRole
    logical_address: int
    serial: str
    hardware_number: str
    features: tuple[str, ...]
    packages: tuple[SoftwarePackage, ...]
    compliance: ComplianceSettings


@dataclass(frozen=True, slots=True)
class Withheld:
    """A standard feature left out of the plan, and why (the rest of the activation goes ahead)."""

    feature: str
    reasons: tuple[RefusalReason, ...]


@dataclass(frozen=True, slots=True)
class ActivationPlan:
    """A plan the cloud can sign: per ECU targets, sorted.

    ``type_approval_features`` lists the planned features whose unlock affects type approval, so
    the R156 assessment travels with the plan.
    """

    vin: Vin
    model: str
    market: Market
    planned_at: datetime
    features: tuple[str, ...]
    targets: tuple[EcuTarget, ...]
    withheld: tuple[Withheld, ...]
    type_approval_features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlanRefusal:
    """Every reason the activation cannot go ahead, sorted; never empty."""

    vin: Vin
    reasons: tuple[RefusalReason, ...]

    def __post_init__(self) -> None:
        if not self.reasons:
            raise DomainValueError("reasons", "a refusal needs at least one reason")

    @property
    def codes(self) -> frozenset[RefusalCode]:
        """The distinct codes, for quick checks."""
        return frozenset(reason.code for reason in self.reasons)


PlanResult = ActivationPlan | PlanRefusal


def plan_activation(
    vehicle: Vehicle,
    *,
    catalog: Catalog,
    entitlements: Iterable[Entitlement],
    profile: ComplianceProfile,
    requested: Iterable[str],
    consent: ConsentRecord | None,
    now: datetime,
) -> PlanResult:
    """Decide what activating ``vehicle`` with ``requested`` features means, or why it cannot."""
    if now.tzinfo is None:
        raise DomainValueError("now", "must be timezone-aware")
    own = tuple(e for e in entitlements if e.vin == vehicle.vin)
    packages = {
        ecu.role: catalog.newest_packages(
            ecu.hardware_number, vehicle.model, vehicle.market, profile.languages
        )
        for ecu in vehicle.ecus
    }
    car_reasons: list[RefusalReason] = []
    if vehicle.state not in ACTIVATABLE_STATES:
        car_reasons.append(WrongLifecycleState(None, vehicle.state))
    if profile.market is not vehicle.market:
        car_reasons.append(ProfileMarketMismatch(None, vehicle.market, profile.market))

    asked = _closure(catalog, frozenset(requested))
    standard = {f.code for f in catalog.standard_features(vehicle.market)}
    candidates = asked | standard
    problems: dict[str, list[RefusalReason]] = {}
    for code in sorted(candidates):
        feature = catalog.feature(code)
        problems[code] = (
            [UnknownFeature(code)]
            if feature is None
            else _feature_problems(
                feature,
                vehicle=vehicle,
                entitlements=own,
                profile=profile,
                consent=consent,
                packages=packages,
                now=now,
            )
        )
    planned = _settle_dependencies(catalog, {c for c in candidates if not problems[c]})
    for code in sorted(candidates):
        feature = catalog.feature(code)
        if feature is not None:
            problems[code].extend(
                DependencyMissing(code, dep) for dep in sorted(feature.depends_on - planned)
            )

    reasons = car_reasons + [r for code in sorted(asked) for r in problems[code]]
    if reasons:
        return PlanRefusal(vehicle.vin, _sorted_unique(reasons))
    return _build_plan(
        vehicle,
        catalog=catalog,
        profile=profile,
        consent=consent,
        packages=packages,
        planned=planned,
        standard=standard,
        problems=problems,
        now=now,
    )


def _closure(catalog: Catalog, requested: frozenset[str]) -> frozenset[str]:
    """Requested codes plus, transitively, everything they depend on (cycles are harmless)."""
    seen: set[str] = set()
    stack = sorted(requested)
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        feature = catalog.feature(code)
        if feature is not None:
            stack.extend(sorted(feature.depends_on))
    return frozenset(seen)


def _settle_dependencies(catalog: Catalog, ok: set[str]) -> frozenset[str]:
    """Drop features whose dependencies are not all kept, until nothing changes."""
    changed = True
    while changed:
        changed = False
        for code in sorted(ok):
            feature = catalog.feature(code)
            if feature is not None and not feature.depends_on <= ok:
                ok.discard(code)
                changed = True
    return frozenset(ok)


def _feature_problems(
    feature: Feature,
    *,
    vehicle: Vehicle,
    entitlements: tuple[Entitlement, ...],
    profile: ComplianceProfile,
    consent: ConsentRecord | None,
    packages: dict[EcuRole, tuple[SoftwarePackage, ...]],
    now: datetime,
) -> list[RefusalReason]:
    code = feature.code
    found: list[RefusalReason] = []
    if feature.offer(vehicle.market) is None:
        found.append(NotOfferedInMarket(code, vehicle.market))
    missing_options = tuple(sorted(feature.required_option_codes - vehicle.option_codes))
    missing_roles = tuple(sorted(feature.required_roles - vehicle.roles))
    if missing_options or missing_roles:
        found.append(HardwareMissing(code, missing_options, missing_roles))
    if not feature.standard_in(vehicle.market):
        entitled = [e for e in entitlements if e.feature_code == code]
        if not any(e.is_active_at(now) for e in entitled):
            details = sorted({e.why_inactive_at(now) or "" for e in entitled})
            found.append(NotEntitled(code, "; ".join(details) or "no entitlement"))
    for category in sorted(feature.data_categories):
        why = profile.refusal(category, consent)
        if why is None:
            continue
        if profile.rule(category).mode is ConsentMode.FORBIDDEN:
            found.append(ConsentForbidden(code, category))
        else:
            found.append(ConsentMissing(code, category, why))
    if feature.cross_border:
        why = profile.cross_border_refusal(consent)
        if why is not None and profile.cross_border_mode is ConsentMode.FORBIDDEN:
            found.append(ConsentForbidden(code, None))
        elif why is not None:
            found.append(ConsentMissing(code, None, why))
    for need in feature.package_needs:
        ecu = vehicle.ecu(need.role)
        if ecu is None:
            continue  # reported as hardware missing
        if not any(p.package_type is need.package_type for p in packages[need.role]):
            found.append(
                NoCompatiblePackage(code, need.role, need.package_type, ecu.hardware_number)
            )
    return found


def _build_plan(
    vehicle: Vehicle,
    *,
    catalog: Catalog,
    profile: ComplianceProfile,
    consent: ConsentRecord | None,
    packages: dict[EcuRole, tuple[SoftwarePackage, ...]],
    planned: frozenset[str],
    standard: set[str],
    problems: dict[str, list[RefusalReason]],
    now: datetime,
) -> ActivationPlan:
    features = [f for f in catalog.features if f.code in planned]
    settings = ComplianceSettings(
        market=profile.market,
        residency=profile.residency,
        retention_days=profile.retention_days,
        notice_version=profile.notice_version,
        languages=profile.languages,
        categories=profile.effective_states(consent),
        cross_border_enabled=profile.cross_border_refusal(consent) is None,
    )
    targets = []
    for ecu in sorted(vehicle.ecus, key=lambda e: e.logical_address):
        on_ecu = [f for f in features if ecu.role in f.required_roles]
        wanted = BASELINE_PACKAGE_TYPES | {
            need.package_type for f in on_ecu for need in f.package_needs if need.role is ecu.role
        }
        targets.append(
            EcuTarget(
                role=ecu.role,
                logical_address=ecu.logical_address,
                serial=ecu.serial,
                hardware_number=ecu.hardware_number,
                features=tuple(sorted(f.code for f in on_ecu)),
                packages=tuple(p for p in packages[ecu.role] if p.package_type in wanted),
                compliance=settings,
            )
        )
    withheld = tuple(
        Withheld(code, _sorted_unique(problems[code])) for code in sorted(standard - planned)
    )
    return ActivationPlan(
        vin=vehicle.vin,
        model=vehicle.model,
        market=vehicle.market,
        planned_at=now,
        features=tuple(sorted(planned)),
        targets=tuple(targets),
        withheld=withheld,
        type_approval_features=tuple(sorted(f.code for f in features if f.affects_type_approval)),
    )


def _sorted_unique(reasons: Iterable[RefusalReason]) -> tuple[RefusalReason, ...]:
    return tuple(sorted(set(reasons), key=RefusalReason.sort_key))
