"""Vehicle version manifest: each ECU speaks with its own key; every Uptane refusal is typed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from forecourt.trust import errors
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.manifest import (
    MAX_MANIFEST_BYTES,
    ActiveFeature,
    EcuVersionReport,
    InstalledImage,
    build_ecu_report,
    build_manifest,
    verify_manifest,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VIN = "WF0XXXGCDX1234567"
SERIALS = ("CGW0001", "TBX0001", "IVI0001")
KEYS = {s: ed25519.Ed25519PrivateKey.generate() for s in SERIALS}
INVENTORY = {s: k.public_key() for s, k in KEYS.items()}
PREVIOUS = {s: 4 for s in SERIALS}


def _report(serial: str, counter: int = 5, attack: str = "") -> EcuVersionReport:
    return EcuVersionReport(
        ecu_serial=serial,
        counter=counter,
        nonce=f"n-{serial}-{counter}",
        latest_verified_time=NOW,
        images=(InstalledImage(f"{serial.lower()}-fw.bin", 1900, {"sha256": "ab" * 32}),),
        features=(ActiveFeature("connected_services", NOW, NOW + timedelta(days=365)),),
        activation_counter=8,
        attack_detected=attack,
    )


def _manifest(
    reports: dict[str, EcuVersionReport] | None = None,
    signers: dict[str, ed25519.Ed25519PrivateKey] | None = None,
    primary_key: ed25519.Ed25519PrivateKey | None = None,
) -> bytes:
    chosen = reports if reports is not None else {s: _report(s) for s in SERIALS}
    keys = {**KEYS, **(signers or {})}
    signed = [build_ecu_report(keys[s], r) for s, r in chosen.items()]
    return build_manifest(primary_key or KEYS["CGW0001"], VIN, "CGW0001", signed)


def _refused(manifest: bytes, error: type[errors.ManifestError]) -> errors.ManifestError:
    with pytest.raises(errors.ManifestError) as caught:
        verify_manifest(manifest, INVENTORY, PREVIOUS, vin=VIN)
    assert type(caught.value) is error, caught.value
    return caught.value


def test_manifest_of_every_ecu_verifies_and_yields_the_next_counters() -> None:
    verified = verify_manifest(_manifest(), INVENTORY, PREVIOUS, vin=VIN)
    assert verified.primary_ecu_serial == "CGW0001"
    assert verified.reports["TBX0001"].images[0].name == "tbx0001-fw.bin"
    assert verified.reports["IVI0001"].features[0].feature == "connected_services"
    assert verified.counters == {s: 5 for s in SERIALS}


def test_inventory_keys_may_be_raw_bytes() -> None:
    raw = {s: k.public_bytes_raw() for s, k in INVENTORY.items()}
    assert verify_manifest(_manifest(), raw, {}).vin == VIN


def test_bad_primary_signature_is_refused() -> None:
    forged = _manifest(primary_key=ed25519.Ed25519PrivateKey.generate())
    _refused(forged, errors.ManifestSignatureInvalid)


def test_report_signed_by_the_primarys_key_instead_of_its_own_is_refused() -> None:
    error = _refused(
        _manifest(signers={"TBX0001": KEYS["CGW0001"]}), errors.ManifestSignatureInvalid
    )
    assert error.detail["ecu_serial"] == "TBX0001"


def test_report_altered_after_the_ecu_signed_it_is_refused() -> None:
    obj = json.loads(_manifest())
    obj["signed"]["ecu_version_reports"]["IVI0001"]["signed"]["counter"] = 99
    resigned = obj["signed"]
    obj["signature"] = KEYS["CGW0001"].sign(canonical_bytes(resigned)).hex()
    _refused(canonical_bytes(obj), errors.ManifestSignatureInvalid)


def test_missing_ecu_is_refused() -> None:
    reports = {s: _report(s) for s in SERIALS if s != "IVI0001"}
    error = _refused(_manifest(reports), errors.ManifestInventoryMismatch)
    assert error.detail["missing"] == ["IVI0001"]


def test_unknown_ecu_is_refused() -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    reports = {**{s: _report(s) for s in SERIALS}, "ADS9999": _report("ADS9999")}
    error = _refused(_manifest(reports, {"ADS9999": stranger}), errors.ManifestInventoryMismatch)
    assert error.detail["unknown"] == ["ADS9999"]


def test_reused_report_counter_is_refused() -> None:
    reports = {**{s: _report(s) for s in SERIALS}, "TBX0001": _report("TBX0001", counter=4)}
    _refused(_manifest(reports), errors.ManifestCounterReused)


def test_set_attack_flag_is_refused() -> None:
    attack = _report("IVI0001", attack="image hash mismatch on ivi-os-3.1.img")
    reports = {**{s: _report(s) for s in SERIALS}, "IVI0001": attack}
    _refused(_manifest(reports), errors.ManifestAttackReported)


def test_manifest_for_another_vin_is_refused() -> None:
    with pytest.raises(errors.ManifestInventoryMismatch):
        verify_manifest(_manifest(), INVENTORY, PREVIOUS, vin="WF0XXXGCDX7654321")


@pytest.mark.parametrize(
    "data",
    [b"[]", b'{"signed": {}, "signature": ""}', b"{" * 10, b" " * (MAX_MANIFEST_BYTES + 1)],
    ids=["not-object", "unknown-format", "not-json", "oversized"],
)
def test_malformed_or_oversized_manifest_is_a_format_error(data: bytes) -> None:
    _refused(data, errors.ManifestFormatError)


def test_report_with_wrong_field_types_is_a_format_error() -> None:
    def edit(obj: dict[str, Any]) -> None:
        obj["counter"] = "five"

    signed = _report("TBX0001").to_dict()
    edit(signed)
    envelope = {"signed": signed, "signature": KEYS["TBX0001"].sign(canonical_bytes(signed)).hex()}
    others = [build_ecu_report(KEYS[s], _report(s)) for s in SERIALS if s != "TBX0001"]
    manifest = build_manifest(KEYS["CGW0001"], VIN, "CGW0001", [*others, envelope])
    _refused(manifest, errors.ManifestFormatError)
