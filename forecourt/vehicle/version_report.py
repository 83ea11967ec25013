"""DID FD04: each ECU's signed version report and the gateway's vehicle version manifest (Uptane).

Each ECU signs its own report with its factory Ed25519 identity key (``build_ecu_report``); the
gateway, as Uptane primary, collects them and signs the manifest (``build_manifest``). A report
counter that rises every cycle (persisted by the car, so a restart never repeats one) and a fresh
nonce make every read distinct, so the cloud can refuse a replayed manifest. Pure: the car passes
in its state, the keys and the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forecourt.trust.manifest import (
    ActiveFeature,
    EcuVersionReport,
    InstalledImage,
    build_ecu_report,
    build_manifest,
)
from forecourt.vehicle.storage import CarState, EcuRecord

PERPETUAL = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
"""``not_after`` reported for a feature granted without an end."""


def _time(value: str | None, default: datetime) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC) if value else default


def ecu_report(
    state: CarState, ecu: EcuRecord, counter: int, nonce: str, now: datetime
) -> EcuVersionReport:
    """What ``ecu`` runs: installed images, its active features, the car's activation counter."""
    provisioned = _time(state.last_verified_at, now)
    return EcuVersionReport(
        ecu_serial=ecu.serial_number,
        counter=counter,
        nonce=nonce,
        latest_verified_time=provisioned,
        images=tuple(
            InstalledImage(i.name, i.length, {"sha256": i.sha256})
            for _, i in sorted(ecu.images.items())
        ),
        features=tuple(
            ActiveFeature(
                f.feature_id,
                _time(f.valid_from, provisioned),
                _time(f.valid_until, PERPETUAL),
            )
            for f in sorted(state.features, key=lambda f: f.feature_id)
            if f.ecu_address == ecu.address
        ),
        activation_counter=state.activation_counter,
    )


def signed_ecu_report(
    state: CarState,
    address: int,
    key: Ed25519PrivateKey,
    *,
    counter: int,
    nonce: str,
    now: datetime,
) -> dict[str, object]:
    """One ECU's report, signed by that ECU's own key."""
    return build_ecu_report(key, ecu_report(state, state.ecus[address], counter, nonce, now))


def vehicle_manifest(
    state: CarState,
    primary: int,
    keys: Mapping[int, Ed25519PrivateKey],
    *,
    counter: int,
    nonce: str,
    now: datetime,
) -> bytes:
    """The manifest over every ECU's own report, signed by the primary (gateway)."""
    reports = [
        signed_ecu_report(state, address, keys[address], counter=counter, nonce=nonce, now=now)
        for address in sorted(state.ecus)
    ]
    return build_manifest(keys[primary], state.vin, state.ecus[primary].serial_number, reports)
