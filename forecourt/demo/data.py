"""Deterministic demo data: models, feature catalog, packages, compliance profiles, dealers, cars.

``generate_world(seed, vehicles)`` always returns the same :class:`DemoWorld` for the same
arguments: every random choice comes from one ``random.Random(seed)`` created here, never from
global state, and the reference time is fixed (pass ``reference_time`` to move it). ECU key pairs
are derived from the seed, VIN and role by :func:`ecu_private_keys`, so the vehicle simulator can
provision the very cars the registry knows, without the private halves being stored in the world.
Package contents are derived from name and version by :func:`package_content`, so a blob store
can serve bytes whose SHA-256 matches the catalog.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from forecourt.core import (
    Catalog,
    CategoryRule,
    ComplianceProfile,
    DataRegion,
    Dealer,
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
    VehicleModel,
    build_vin,
    to_json,
)
from forecourt.core.codec import Json
from forecourt.core.compliance import ConsentMode as C
from forecourt.core.compliance import DataCategory as D

DEMO_EPOCH: Final = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
_ALL_MARKETS: Final = (Market.EU, Market.CN, Market.US)
_R = EcuRole

# Option codes (factory configuration): what hardware is fitted.
T5G, HUP, ADS, DKB, WFH, CAM = "T5G", "HUP", "ADS", "DKB", "WFH", "CAM"
OPTION_NAMES: Final = {
    T5G: "5G telematics box",
    HUP: "premium head unit with microphone array",
    ADS: "ADAS sensor suite (cameras, radar) and domain controller",
    DKB: "digital key antennas (BLE, UWB, NFC)",
    WFH: "Wi-Fi hotspot antenna",
    CAM: "interior camera",
}


@dataclass(frozen=True, slots=True)
class DemoWorld:
    """Everything the demo needs, immutable. ``to_json`` gives the ``--json`` file's content."""

    seed: int
    reference_time: datetime
    models: tuple[VehicleModel, ...]
    catalog: Catalog
    profiles: tuple[ComplianceProfile, ...]
    dealers: tuple[Dealer, ...]
    vehicles: tuple[Vehicle, ...]
    entitlements: tuple[Entitlement, ...]

    def profile(self, market: Market) -> ComplianceProfile:
        """The compliance profile of ``market``."""
        return next(p for p in self.profiles if p.market is market)

    def to_json(self) -> Json:
        """Plain JSON (:mod:`forecourt.core.codec`); dump with ``sort_keys`` for stable bytes."""
        return to_json(self)


def _models() -> tuple[VehicleModel, ...]:
    def model(
        code: str, name: str, body: str, *, std: set[str], opt: set[str], hw: tuple[str, str, str]
    ) -> VehicleModel:
        cgw, hu, adas = hw
        return VehicleModel(
            code=code,
            name=name,
            body=body,
            standard_options=frozenset(std),
            optional_options=frozenset(opt),
            ecu_hardware=(
                (_R.CGW, cgw),
                (_R.TBOX, "TBX-5G-200"),
                (_R.HEAD_UNIT, hu),
                (_R.ADAS, adas),
            ),
            option_for_role=((_R.ADAS, ADS),),
        )

    return (
        model("VOLTA", "Volta", "compact EV", std={T5G}, opt={HUP, ADS, DKB, WFH},
              hw=("CGW-2-100", "HU-10-300", "ADAS-L2P-500")),
        model("TERRA", "Terra", "SUV", std={T5G, HUP, WFH}, opt={ADS, DKB, CAM},
              hw=("CGW-3-110", "HU-12-400", "ADAS-L2P-500")),
        model("AURA", "Aura", "sedan", std={T5G, HUP, ADS, DKB}, opt={CAM, WFH},
              hw=("CGW-3-110", "HU-12-400", "ADAS-L2P-510")),
        model("HAULER", "Hauler", "pickup", std={T5G}, opt={HUP, ADS, WFH},
              hw=("CGW-2-100", "HU-10-300", "ADAS-L2P-500")),
    )  # fmt: skip


def _offers(
    default_on: Iterable[Market] = (), off: Iterable[Market] = ()
) -> tuple[MarketOffer, ...]:
    on = [MarketOffer(m, default_on=True) for m in default_on]
    return tuple(
        sorted(on + [MarketOffer(m, default_on=False) for m in off], key=lambda o: o.market)
    )


def _features() -> tuple[Feature, ...]:
    perpetual = LicenceTerms(LicenceKind.PERPETUAL)
    yearly = LicenceTerms(LicenceKind.SUBSCRIPTION, 365)
    trial = LicenceTerms(LicenceKind.TRIAL, 90)

    def feature(
        code: str,
        name: str,
        roles: set[EcuRole],
        offers: tuple[MarketOffer, ...],
        licence: LicenceTerms,
        *,
        options: set[str] | None = None,
        deps: set[str] | None = None,
        data: set[D] | None = None,
        approval: bool = False,
        cross_border: bool = False,
        needs: tuple[PackageNeed, ...] = (),
    ) -> Feature:
        return Feature(
            code=code,
            name=name,
            required_option_codes=frozenset(options or ()),
            required_roles=frozenset(roles),
            depends_on=frozenset(deps or ()),
            offers=offers,
            data_categories=frozenset(data or ()),
            licence=licence,
            affects_type_approval=approval,
            cross_border=cross_border,
            package_needs=needs,
        )

    every = _offers(off=_ALL_MARKETS)
    return (
        feature("CONNECT", "Connected services", {_R.CGW, _R.TBOX}, _offers(_ALL_MARKETS),
                perpetual, options={T5G}, data={D.VEHICLE_DIAGNOSTICS}),
        feature("OTA", "Over-the-air updates", {_R.CGW, _R.TBOX}, _offers(_ALL_MARKETS),
                perpetual, options={T5G}, deps={"CONNECT"}, data={D.VEHICLE_DIAGNOSTICS},
                needs=(PackageNeed(_R.CGW, PackageType.OS),)),
        feature("REMOTE", "Remote control (lock, climate, charging)", {_R.TBOX}, every, yearly,
                options={T5G}, deps={"CONNECT"}, data={D.LOCATION}),
        feature("VOICE", "Voice assistant", {_R.HEAD_UNIT}, every, yearly, options={HUP},
                deps={"CONNECT"}, data={D.AUDIO_VOICE},
                needs=(PackageNeed(_R.HEAD_UNIT, PackageType.LANGUAGE),)),
        feature("ADAS_L2P", "Highway assist (ADAS L2+)", {_R.ADAS, _R.CGW}, every, perpetual,
                options={ADS}, data={D.VIDEO_CAMERA, D.DRIVING_BEHAVIOUR}, approval=True,
                needs=(PackageNeed(_R.ADAS, PackageType.OS),)),
        feature("NAV", "Connected navigation", {_R.HEAD_UNIT}, every,
                LicenceTerms(LicenceKind.SUBSCRIPTION, 3 * 365), deps={"CONNECT"},
                data={D.LOCATION, D.TRAJECTORY},
                needs=(PackageNeed(_R.HEAD_UNIT, PackageType.MAP),)),
        feature("TRAFFIC", "Live traffic and hazard warnings", {_R.HEAD_UNIT}, every, yearly,
                deps={"NAV"}, data={D.LOCATION}),
        feature("DIGITAL_KEY", "Digital key (phone as key)", {_R.CGW, _R.TBOX}, every, perpetual,
                options={DKB}, data={D.CONTACT_DATA}),
        feature("WIFI_HOTSPOT", "Wi-Fi hotspot", {_R.TBOX}, every, yearly, options={WFH},
                deps={"CONNECT"}, data={D.USAGE}),
        feature("DRIVER_MONITOR", "Driver attention monitoring", {_R.ADAS}, every, perpetual,
                options={CAM, ADS}, data={D.BIOMETRICS, D.VIDEO_CAMERA}, approval=True),
        feature("STOLEN_TRACK", "Stolen vehicle tracking", {_R.TBOX}, every, yearly,
                options={T5G}, deps={"CONNECT"}, data={D.LOCATION, D.TRAJECTORY}),
        feature("POWER_BOOST", "Acceleration boost", {_R.CGW}, _offers(off=(Market.EU, Market.US)),
                perpetual, approval=True),
        feature("INSURE_UBI", "Usage-based insurance", {_R.TBOX}, _offers(off=(Market.US,)),
                yearly, deps={"CONNECT"}, data={D.DRIVING_BEHAVIOUR, D.TRAJECTORY}),
        feature("PROFILE_SYNC", "Driver profile sync across regions", {_R.HEAD_UNIT}, every,
                trial, deps={"CONNECT"}, data={D.CONTACT_DATA, D.USAGE}, cross_border=True),
    )  # fmt: skip


def package_content(name: str, version: str, size: int) -> bytes:
    """The demo bytes of a package: SHAKE-256 of its name and version, ``size`` bytes long."""
    return hashlib.shake_256(f"forecourt-demo-package|{name}|{version}".encode()).digest(size)


def _package(
    name: str,
    version: str,
    kind: PackageType,
    *,
    role: EcuRole,
    hardware: Iterable[str],
    markets: Iterable[Market],
    size: int,
    models: Iterable[str] = (),
    language: str | None = None,
) -> SoftwarePackage:
    return SoftwarePackage(
        name=name,
        version=SemVer.parse(version),
        package_type=kind,
        target_role=role,
        compatible_hardware=frozenset(hardware),
        markets=frozenset(markets),
        size=size,
        sha256=hashlib.sha256(package_content(name, version, size)).hexdigest(),
        models=frozenset(models),
        language=language,
    )


_LANGUAGES: Final = {
    Market.EU: ("en", "de", "fr", "es", "it"),
    Market.CN: ("zh-CN", "en"),
    Market.US: ("en-US", "es-US"),
}


def _packages(models: tuple[VehicleModel, ...], rng: random.Random) -> tuple[SoftwarePackage, ...]:
    by_role: dict[EcuRole, set[str]] = {}
    for model in models:
        for role, hardware in model.ecu_hardware:
            by_role.setdefault(role, set()).add(hardware)
    packages: list[SoftwarePackage] = []
    for role in sorted(by_role):
        for hardware in sorted(by_role[role]):
            for version in ("1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1"):
                size = rng.randrange(256, 1024) * 1024
                packages.append(
                    _package(f"os-{hardware.lower()}", version, PackageType.OS, role=role,
                             hardware=[hardware], markets=_ALL_MARKETS, size=size)
                )  # fmt: skip
    head_units = sorted(by_role[_R.HEAD_UNIT])
    cgws = sorted(by_role[_R.CGW])
    for market in _ALL_MARKETS:
        region = market.value.lower()
        for version in ("24.4.0", "25.1.0"):
            size = rng.randrange(512, 2048) * 1024
            packages.append(
                _package(f"map-{region}", version, PackageType.MAP, role=_R.HEAD_UNIT,
                         hardware=head_units, markets=[market], size=size)
            )  # fmt: skip
        for version in ("3.0.0", "3.1.0"):
            packages.append(
                _package(f"compliance-{region}", version, PackageType.COMPLIANCE, role=_R.CGW,
                         hardware=cgws, markets=[market], size=rng.randrange(4, 16) * 1024)
            )  # fmt: skip
    languages: dict[str, set[Market]] = {}
    for market, tags in _LANGUAGES.items():
        for tag in tags:
            languages.setdefault(tag, set()).add(market)
    for tag in sorted(languages):
        packages.append(
            _package(f"lang-{tag.lower()}", "1.0.0", PackageType.LANGUAGE, role=_R.HEAD_UNIT,
                     hardware=head_units, markets=languages[tag],
                     size=rng.randrange(64, 256) * 1024, language=tag)
        )  # fmt: skip
    for model in models:
        cgw = model.hardware_for(_R.CGW)
        assert cgw is not None
        packages.append(
            _package(f"config-{model.code.lower()}", "1.0.0", PackageType.CONFIG, role=_R.CGW,
                     hardware=[cgw], markets=_ALL_MARKETS, size=rng.randrange(2, 8) * 1024,
                     models=[model.code])
        )  # fmt: skip
    return tuple(packages)


def _profiles() -> tuple[ComplianceProfile, ...]:
    def rules(*items: tuple[D, C, bool, bool]) -> tuple[CategoryRule, ...]:
        return tuple(CategoryRule(cat, mode, on, separate) for cat, mode, on, separate in items)

    eu = ComplianceProfile(
        market=Market.EU,
        residency=DataRegion.EU,
        # GDPR + EDPB connected-vehicle guidelines: optional processing off until consented.
        rules=rules(
            (D.LOCATION, C.OPT_IN, False, False),
            (D.TRAJECTORY, C.OPT_IN, False, False),
            (D.AUDIO_VOICE, C.OPT_IN, False, False),
            (D.VIDEO_CAMERA, C.OPT_IN, False, False),
            (D.BIOMETRICS, C.OPT_IN, False, True),
            (D.DRIVING_BEHAVIOUR, C.OPT_IN, False, False),
            (D.VEHICLE_DIAGNOSTICS, C.NOTICE_ONLY, True, False),
            (D.CONTACT_DATA, C.OPT_IN, False, False),
            (D.USAGE, C.OPT_IN, False, False),
        ),
        cross_border_mode=C.OPT_IN,
        retention_days=365,
        notice_version="eu-2025.1",
        languages=_LANGUAGES[Market.EU],
    )
    cn = ComplianceProfile(
        market=Market.CN,
        residency=DataRegion.CN,
        # 2021 automotive data provisions: in-car processing and no collection by default,
        # sensitive data (trajectory, audio/video, biometrics) only with separate consent.
        rules=rules(
            (D.LOCATION, C.OPT_IN, False, False),
            (D.TRAJECTORY, C.OPT_IN, False, True),
            (D.AUDIO_VOICE, C.OPT_IN, False, True),
            (D.VIDEO_CAMERA, C.OPT_IN, False, True),
            (D.BIOMETRICS, C.OPT_IN, False, True),
            (D.DRIVING_BEHAVIOUR, C.OPT_IN, False, False),
            (D.VEHICLE_DIAGNOSTICS, C.NOTICE_ONLY, False, False),
            (D.CONTACT_DATA, C.OPT_IN, False, False),
            (D.USAGE, C.OPT_IN, False, False),
        ),
        cross_border_mode=C.OPT_IN,  # off by default; a separate, explicit grant turns it on
        retention_days=180,
        notice_version="cn-2025.1",
        languages=_LANGUAGES[Market.CN],
    )
    us = ComplianceProfile(
        market=Market.US,
        residency=DataRegion.US,
        # Notice and choice (CCPA/CPRA); biometrics and driving behaviour shared with insurers
        # need an explicit grant.
        rules=rules(
            (D.LOCATION, C.OPT_OUT, True, False),
            (D.TRAJECTORY, C.OPT_OUT, True, False),
            (D.AUDIO_VOICE, C.OPT_OUT, True, False),
            (D.VIDEO_CAMERA, C.OPT_OUT, True, False),
            (D.BIOMETRICS, C.OPT_IN, False, True),
            (D.DRIVING_BEHAVIOUR, C.OPT_IN, False, True),
            (D.VEHICLE_DIAGNOSTICS, C.NOTICE_ONLY, True, False),
            (D.CONTACT_DATA, C.OPT_OUT, True, False),
            (D.USAGE, C.NOTICE_ONLY, True, False),
        ),
        cross_border_mode=C.NOTICE_ONLY,
        retention_days=730,
        notice_version="us-2025.1",
        languages=_LANGUAGES[Market.US],
    )
    return (eu, cn, us)


def _dealers() -> tuple[Dealer, ...]:
    return (
        Dealer("DE-MUC-01", "Forecourt München Nord", "Munich", "DE", Market.EU, 48.1765, 11.5906),
        Dealer("FR-PAR-01", "Forecourt Paris Est", "Paris", "FR", Market.EU, 48.8566, 2.3950),
        Dealer(
            "CN-SHA-01", "Forecourt Shanghai Pudong", "Shanghai", "CN", Market.CN, 31.2304, 121.5440
        ),
        Dealer(
            "CN-SZX-01", "Forecourt Shenzhen Futian", "Shenzhen", "CN", Market.CN, 22.5410, 114.0540
        ),
        Dealer(
            "US-SFO-01", "Forecourt Bay Area", "San Francisco", "US", Market.US, 37.7749, -122.4194
        ),
        Dealer("US-DTW-01", "Forecourt Detroit", "Detroit", "US", Market.US, 42.3314, -83.0458),
    )


# Where cars for each market are built: WMI (ISO 3780 region of the plant) and plant code.
_PLANTS: Final = {
    Market.EU: ("WFK", "M", "Munich"),
    Market.CN: ("LFK", "S", "Shanghai"),
    Market.US: ("5FK", "D", "Detroit"),
}
_MODEL_LETTER: Final = {"VOLTA": "V", "TERRA": "T", "AURA": "A", "HAULER": "H"}
# 49 CFR 565: position 10 for 2024–2026; position 7 must then be a letter (2010–2039 cycle).
_YEAR_CODE: Final = {2024: "R", 2025: "S", 2026: "T"}
_STATES: Final = (
    (LifecycleState.AT_DEALER, 70),
    (LifecycleState.SHIPPED, 10),
    (LifecycleState.ACTIVATED, 5),
    (LifecycleState.DELIVERED, 10),
    (LifecycleState.IN_SERVICE, 5),
)


def ecu_private_keys(
    seed: int, vin: str, role: EcuRole
) -> tuple[Ed25519PrivateKey, X25519PrivateKey]:
    """The demo ECU's signing (Ed25519) and sealing (X25519) keys, derived from seed, VIN, role.

    Demo only: anyone with the seed has the keys. Real ECUs generate keys in secure storage.
    """
    base = f"forecourt-demo-ecu|{seed}|{vin}|{role.value}"
    signing = hashlib.sha256((base + "|signing").encode()).digest()
    sealing = hashlib.sha256((base + "|sealing").encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(signing), X25519PrivateKey.from_private_bytes(
        sealing
    )


def _raw(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _vehicle(
    rng: random.Random,
    *,
    seed: int,
    serial: int,
    model: VehicleModel,
    dealer: Dealer,
    reference_time: datetime,
) -> Vehicle:
    options = set(model.standard_options)
    options.update(o for o in sorted(model.optional_options) if rng.random() < 0.5)
    year = rng.choice(sorted(_YEAR_CODE))
    wmi, plant, _city = _PLANTS[dealer.market]
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    vds = (
        _MODEL_LETTER[model.code]
        + rng.choice(letters)
        + rng.choice("0123456789")
        + rng.choice(letters)  # position 7: a letter puts the model year in 2010–2039
        + rng.choice("0123456789")
    )
    vin = build_vin(wmi, vds, f"{_YEAR_CODE[year]}{plant}{serial:06d}")
    fitted_only_with = dict(model.option_for_role)
    ecus = []
    for role, hardware in model.ecu_hardware:
        needed = fitted_only_with.get(role)
        if needed is not None and needed not in options:
            continue
        signing, sealing = ecu_private_keys(seed, vin.value, role)
        ecus.append(
            Ecu(
                role=role,
                logical_address=role.logical_address,
                serial=f"{role.value[:3].upper()}{rng.getrandbits(40):010X}",
                hardware_number=hardware,
                software_version=rng.choice(("1.0.0", "1.1.0")),
                signing_public_key=_raw(signing),
                sealing_public_key=_raw(sealing),
            )
        )
    build_day = (reference_time - timedelta(days=rng.randrange(20, 200))).date()
    state = rng.choices([s for s, _ in _STATES], weights=[w for _, w in _STATES])[0]
    return Vehicle(
        vin=vin,
        model=model.code,
        model_year=year,
        plant=plant,
        build_date=build_day,
        market=dealer.market,
        option_codes=frozenset(options),
        ecus=tuple(ecus),
        state=state,
        dealer_id=None
        if state is LifecycleState.SHIPPED and rng.random() < 0.5
        else dealer.dealer_id,
        owner_ref=(
            f"OWN-{rng.getrandbits(32):08X}"
            if state in (LifecycleState.DELIVERED, LifecycleState.IN_SERVICE)
            else None
        ),
    )


def _entitlements(
    rng: random.Random, vehicle: Vehicle, catalog: Catalog, reference_time: datetime
) -> list[Entitlement]:
    built = datetime.combine(vehicle.build_date, time(12), tzinfo=UTC)
    granted: list[Entitlement] = [
        Entitlement(vehicle.vin, f.code, EntitlementSource.STANDARD, built, None)
        for f in catalog.standard_features(vehicle.market)
    ]
    for feature in catalog.features:
        if feature.standard_in(vehicle.market) or feature.offer(vehicle.market) is None:
            continue
        if not feature.required_option_codes <= vehicle.option_codes:
            continue
        roll = rng.random()
        start = reference_time - timedelta(days=rng.randrange(0, 30))
        duration = feature.licence.duration_days
        if roll < 0.35:
            until = None if duration is None else start + timedelta(days=duration)
            granted.append(
                Entitlement(vehicle.vin, feature.code, EntitlementSource.PURCHASE, start, until)
            )
        elif roll < 0.55:
            granted.append(
                Entitlement(
                    vehicle.vin,
                    feature.code,
                    EntitlementSource.TRIAL,
                    start,
                    start + timedelta(days=90),
                )
            )
    return granted


def generate_world(
    seed: int = 7, vehicles: int = 20, reference_time: datetime = DEMO_EPOCH
) -> DemoWorld:
    """Build the demo world; the same arguments always give an equal world."""
    if vehicles < 0:
        raise ValueError("vehicles must not be negative")
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    models = _models()
    catalog = Catalog(_features(), _packages(models, rng))
    dealers = _dealers()
    cars: list[Vehicle] = []
    entitlements: list[Entitlement] = []
    for index in range(vehicles):
        dealer = dealers[index % len(dealers)]  # every dealer gets cars, even with few vehicles
        car = _vehicle(
            rng,
            seed=seed,
            serial=index + 1,
            model=rng.choice(models),
            dealer=dealer,
            reference_time=reference_time,
        )
        cars.append(car)
        entitlements.extend(_entitlements(rng, car, catalog, reference_time))
    return DemoWorld(
        seed=seed,
        reference_time=reference_time,
        models=models,
        catalog=catalog,
        profiles=_profiles(),
        dealers=dealers,
        vehicles=tuple(cars),
        entitlements=tuple(entitlements),
    )


__all__ = ["DEMO_EPOCH", "OPTION_NAMES", "DemoWorld", "ecu_private_keys", "generate_world",
           "package_content"]  # fmt: skip
