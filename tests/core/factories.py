"""Small hand-made domain objects for the core tests: one car, a little catalog, profiles."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from forecourt.core import (
    Catalog,
    CategoryRule,
    ComplianceProfile,
    ConsentChoice,
    ConsentMode,
    ConsentRecord,
    DataCategory,
    DataRegion,
    Ecu,
    EcuRole,
    Entitlement,
    EntitlementSource,
    Feature,
    LicenceKind,
    LicenceTerms,
    LifecycleState,
    Market,
    MarketOffer,
    PackageNeed,
    PackageType,
    SemVer,
    SoftwarePackage,
    Vehicle,
    build_vin,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
VIN = build_vin("WFK", "TA1CD", "SM000042")
NOTICE = "eu-1"


def ecu(role: EcuRole, hardware: str | None = None) -> Ecu:
    return Ecu(
        role=role,
        logical_address=role.logical_address,
        serial=f"SN-{role.value}",
        hardware_number=hardware or f"HW-{role.value}",
        software_version="1.0.0",
        signing_public_key=bytes(32),
        sealing_public_key=bytes(32),
    )


def vehicle(
    options: frozenset[str] = frozenset({"T5G", "HUP", "ADS"}),
    roles: tuple[EcuRole, ...] = (EcuRole.CGW, EcuRole.TBOX, EcuRole.HEAD_UNIT, EcuRole.ADAS),
    state: LifecycleState = LifecycleState.AT_DEALER,
    market: Market = Market.EU,
) -> Vehicle:
    return Vehicle(
        vin=VIN,
        model="TERRA",
        model_year=2025,
        plant="M",
        build_date=date(2025, 1, 10),
        market=market,
        option_codes=options,
        ecus=tuple(ecu(role) for role in roles),
        state=state,
        dealer_id="DE-MUC-01",
    )


def feature(
    code: str,
    roles: set[EcuRole],
    *,
    options: set[str] | None = None,
    deps: set[str] | None = None,
    data: set[DataCategory] | None = None,
    standard: bool = False,
    markets: tuple[Market, ...] = (Market.EU, Market.US),
    cross_border: bool = False,
    needs: tuple[PackageNeed, ...] = (),
    approval: bool = False,
) -> Feature:
    return Feature(
        code=code,
        name=code.title(),
        required_option_codes=frozenset(options or ()),
        required_roles=frozenset(roles),
        depends_on=frozenset(deps or ()),
        offers=tuple(MarketOffer(m, default_on=standard) for m in markets),
        data_categories=frozenset(data or ()),
        licence=LicenceTerms(LicenceKind.PERPETUAL),
        affects_type_approval=approval,
        cross_border=cross_border,
        package_needs=needs,
    )


def package(
    name: str,
    version: str,
    kind: PackageType,
    role: EcuRole,
    *,
    hardware: str | None = None,
    markets: frozenset[Market] = frozenset({Market.EU}),
    models: frozenset[str] = frozenset(),
    language: str | None = None,
) -> SoftwarePackage:
    return SoftwarePackage(
        name=name,
        version=SemVer.parse(version),
        package_type=kind,
        target_role=role,
        compatible_hardware=frozenset({hardware or f"HW-{role.value}"}),
        markets=markets,
        size=1024,
        sha256=hashlib.sha256(f"{name}{version}".encode()).hexdigest(),
        models=models,
        language=language,
    )


R = EcuRole
D = DataCategory

FEATURES = (
    feature("CONNECT", {R.CGW, R.TBOX}, options={"T5G"}, data={D.VEHICLE_DIAGNOSTICS},
            standard=True),
    feature("NAV", {R.HEAD_UNIT}, deps={"CONNECT"}, data={D.LOCATION},
            needs=(PackageNeed(R.HEAD_UNIT, PackageType.MAP),)),
    feature("TRAFFIC", {R.HEAD_UNIT}, deps={"NAV"}, data={D.LOCATION}),
    feature("ADAS_L2P", {R.ADAS, R.CGW}, options={"ADS"}, data={D.VIDEO_CAMERA}, approval=True,
            needs=(PackageNeed(R.ADAS, PackageType.OS),)),
    feature("VOICE", {R.HEAD_UNIT}, options={"HUP"}, data={D.AUDIO_VOICE}),
    feature("FACE_ID", {R.HEAD_UNIT}, data={D.BIOMETRICS}),
    feature("SYNC", {R.HEAD_UNIT}, cross_border=True),
    feature("BOOST", {R.CGW}, markets=(Market.US,)),
    feature("KEY", {R.TBOX}, options={"DKB"}),
)  # fmt: skip

PACKAGES = (
    package("os-cgw", "1.0.0", PackageType.OS, R.CGW),
    package("os-cgw", "1.2.0", PackageType.OS, R.CGW),
    package("os-cgw", "1.10.0", PackageType.OS, R.CGW),
    package("os-cgw", "2.0.0-rc.1", PackageType.OS, R.CGW),
    package("os-cgw-other", "9.0.0", PackageType.OS, R.CGW, hardware="HW-other"),
    package("os-adas", "3.1.0", PackageType.OS, R.ADAS),
    package("map-eu", "25.1.0", PackageType.MAP, R.HEAD_UNIT),
    package("map-us", "25.2.0", PackageType.MAP, R.HEAD_UNIT, markets=frozenset({Market.US})),
    package("lang-de", "1.0.0", PackageType.LANGUAGE, R.HEAD_UNIT, language="de"),
    package("lang-fr", "1.0.0", PackageType.LANGUAGE, R.HEAD_UNIT, language="fr"),
    package("compliance-eu", "3.0.0", PackageType.COMPLIANCE, R.CGW),
    package("config-aura", "1.0.0", PackageType.CONFIG, R.CGW, models=frozenset({"AURA"})),
)

CATALOG = Catalog(FEATURES, PACKAGES)


def profile(
    market: Market = Market.EU,
    *,
    biometrics: ConsentMode = ConsentMode.FORBIDDEN,
    cross_border: ConsentMode = ConsentMode.OPT_IN,
) -> ComplianceProfile:
    return ComplianceProfile(
        market=market,
        residency=DataRegion.EU,
        rules=(
            CategoryRule(D.LOCATION, ConsentMode.OPT_IN, default_on=False),
            CategoryRule(D.AUDIO_VOICE, ConsentMode.OPT_IN, default_on=False),
            CategoryRule(D.VIDEO_CAMERA, ConsentMode.OPT_IN, default_on=False),
            CategoryRule(D.BIOMETRICS, biometrics, default_on=False),
            CategoryRule(D.VEHICLE_DIAGNOSTICS, ConsentMode.NOTICE_ONLY, default_on=True),
            CategoryRule(D.USAGE, ConsentMode.OPT_OUT, default_on=True),
        ),
        cross_border_mode=cross_border,
        retention_days=365,
        notice_version=NOTICE,
        languages=("de",),
    )


def consent(
    *granted: DataCategory, cross_border: bool | None = None, notice: str = NOTICE
) -> ConsentRecord:
    return ConsentRecord(
        notice_version=notice,
        captured_at=NOW - timedelta(minutes=5),
        choices=tuple(ConsentChoice(c, granted=True) for c in sorted(set(granted))),
        cross_border=cross_border,
    )


def entitled(*codes: str, **changes: object) -> tuple[Entitlement, ...]:
    base = [
        Entitlement(VIN, code, EntitlementSource.PURCHASE, NOW - timedelta(days=1), None)
        for code in codes
    ]
    return tuple(replace(e, **changes) for e in base)  # type: ignore[arg-type]
