"""The vehicle version manifest (Uptane): what each ECU says it runs, each in its own voice.

Every ECU signs its own **version report** with its factory Ed25519 key (the key its ECU identity
certificate binds): serial, installed images (name, length, hashes), active features with their
validity, its activation counter, a report counter that rises every cycle plus a nonce, the attack
indicator and the latest time it verified metadata. The gateway (Uptane primary, 0x1000) collects
the reports and signs the **manifest** over VIN, its own serial and the reports with its key.

The cloud and the edge read a manifest with :func:`verify_manifest` and refuse, with one typed
:class:`~forecourt.trust.errors.ManifestError` each:

* malformed, unknown format or above :data:`MAX_MANIFEST_BYTES` (checked before parsing);
* the primary's signature not valid under the primary's inventory key;
* an ECU of the inventory not reported, or a report from an ECU not in the inventory;
* a report not signed by **that ECU's own key** — a report signed by the primary's key is refused
  even though the primary signed the whole manifest (Uptane implementations have shipped the bug
  of checking every report against the primary's key, which lets a compromised primary speak for
  every ECU);
* a report counter not above the last one accepted for that ECU (replayed report);
* an ECU that reports an attack.

Encoding: canonical JSON (:mod:`forecourt.trust.canonical`), signatures are hex Ed25519 over the
canonical bytes of the ``signed`` object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from forecourt.logging import get_logger
from forecourt.trust._sslib import Signer
from forecourt.trust.canonical import canonical_bytes, parse_bounded
from forecourt.trust.errors import (
    BundleError,
    ManifestAttackReported,
    ManifestCounterReused,
    ManifestError,
    ManifestFormatError,
    ManifestInventoryMismatch,
    ManifestSignatureInvalid,
)

MANIFEST_FORMAT = "forecourt.manifest/1"
REPORT_FORMAT = "forecourt.ecu-report/1"
MAX_MANIFEST_BYTES = 262_144
MAX_REPORTS = 64
MAX_IMAGES_PER_ECU = 16
MAX_FEATURES_PER_ECU = 64

_log = get_logger("trust.manifest")

__all__ = [
    "MANIFEST_FORMAT",
    "MAX_MANIFEST_BYTES",
    "ActiveFeature",
    "EcuVersionReport",
    "InstalledImage",
    "VerifiedManifest",
    "build_ecu_report",
    "build_manifest",
    "verify_manifest",
]

EcuSigner = ed25519.Ed25519PrivateKey | Signer
EcuPublicKey = ed25519.Ed25519PublicKey | bytes


@dataclass(frozen=True)
class InstalledImage:
    name: str
    length: int
    hashes: Mapping[str, str]


@dataclass(frozen=True)
class ActiveFeature:
    feature: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class EcuVersionReport:
    """One ECU's signed statement of what it runs."""

    ecu_serial: str
    counter: int
    """Report counter: strictly rises every reporting cycle (replay detection)."""
    nonce: str
    latest_verified_time: datetime
    images: tuple[InstalledImage, ...] = ()
    features: tuple[ActiveFeature, ...] = ()
    activation_counter: int = 0
    attack_detected: str = ""
    """Empty when no attack; otherwise what the ECU detected (Uptane's attack indicator)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "ecu_serial": self.ecu_serial,
            "counter": self.counter,
            "nonce": self.nonce,
            "latest_verified_time": _iso(self.latest_verified_time),
            "installed_images": [
                {"name": i.name, "length": i.length, "hashes": dict(i.hashes)} for i in self.images
            ],
            "active_features": [
                {
                    "feature": f.feature,
                    "not_before": _iso(f.not_before),
                    "not_after": _iso(f.not_after),
                }
                for f in self.features
            ],
            "activation_counter": self.activation_counter,
            "attack_detected": self.attack_detected,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> EcuVersionReport:
        try:
            if obj["format"] != REPORT_FORMAT:
                raise ManifestFormatError(f"unknown report format {obj['format']!r}")
            images, features = obj["installed_images"], obj["active_features"]
            if len(images) > MAX_IMAGES_PER_ECU or len(features) > MAX_FEATURES_PER_ECU:
                raise ManifestFormatError("too many images or features in one report")
            return cls(
                ecu_serial=_str(obj["ecu_serial"]),
                counter=_int(obj["counter"]),
                nonce=_str(obj["nonce"]),
                latest_verified_time=datetime.fromisoformat(obj["latest_verified_time"]),
                images=tuple(
                    InstalledImage(_str(i["name"]), _int(i["length"]), dict(i["hashes"]))
                    for i in images
                ),
                features=tuple(
                    ActiveFeature(
                        _str(f["feature"]),
                        datetime.fromisoformat(f["not_before"]),
                        datetime.fromisoformat(f["not_after"]),
                    )
                    for f in features
                ),
                activation_counter=_int(obj["activation_counter"]),
                attack_detected=_str(obj["attack_detected"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestFormatError(f"version report malformed: {exc}") from exc


@dataclass(frozen=True)
class VerifiedManifest:
    vin: str
    primary_ecu_serial: str
    reports: Mapping[str, EcuVersionReport] = field(default_factory=dict)

    @property
    def counters(self) -> dict[str, int]:
        """What to store as ``previous_counters`` for the next manifest of this vehicle."""
        return {serial: r.counter for serial, r in self.reports.items()}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value


def _sign(signer: EcuSigner, payload: bytes) -> str:
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return signer.sign(payload).hex()
    return signer.sign(payload).signature


def _verify_signature(key: EcuPublicKey, signature: Any, payload: bytes) -> bool:
    public = key if isinstance(key, ed25519.Ed25519PublicKey) else _raw_key(key)
    try:
        public.verify(bytes.fromhex(_str(signature)), payload)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _raw_key(key: bytes) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(key)


def build_ecu_report(signer: EcuSigner, report: EcuVersionReport) -> dict[str, Any]:
    """The ECU signs its own report with its own key."""
    signed = report.to_dict()
    return {"signed": signed, "signature": _sign(signer, canonical_bytes(signed))}


def build_manifest(
    signer: EcuSigner,
    vin: str,
    primary_ecu_serial: str,
    reports: Sequence[Mapping[str, Any]],
) -> bytes:
    """The gateway signs the manifest over the reports it collected (it cannot alter them)."""
    signed = {
        "format": MANIFEST_FORMAT,
        "vin": vin,
        "primary_ecu_serial": primary_ecu_serial,
        "ecu_version_reports": {r["signed"]["ecu_serial"]: dict(r) for r in reports},
    }
    return canonical_bytes({"signed": signed, "signature": _sign(signer, canonical_bytes(signed))})


def _check(
    manifest: bytes,
    inventory: Mapping[str, EcuPublicKey],
    previous: Mapping[str, int],
    vin: str | None,
) -> VerifiedManifest:
    try:
        obj = parse_bounded(manifest, MAX_MANIFEST_BYTES, "vehicle version manifest")
    except BundleError as exc:
        raise ManifestFormatError(str(exc), cause=exc.code) from exc
    signed, signature = obj.get("signed"), obj.get("signature")
    if not isinstance(signed, dict) or set(obj) != {"signed", "signature"}:
        raise ManifestFormatError("manifest must hold exactly signed and signature")
    if signed.get("format") != MANIFEST_FORMAT:
        raise ManifestFormatError(f"unknown manifest format {signed.get('format')!r}")
    primary, reports = signed.get("primary_ecu_serial"), signed.get("ecu_version_reports")
    if not isinstance(primary, str) or not isinstance(reports, dict):
        raise ManifestFormatError("manifest lacks primary serial or reports")
    if len(reports) > MAX_REPORTS:
        raise ManifestFormatError(f"more than {MAX_REPORTS} reports")
    if primary not in inventory:
        raise ManifestInventoryMismatch(f"primary {primary} is not in the inventory")
    if not _verify_signature(inventory[primary], signature, canonical_bytes(signed)):
        raise ManifestSignatureInvalid("primary's signature over the manifest does not verify")
    if vin is not None and signed.get("vin") != vin:
        raise ManifestInventoryMismatch("manifest is for another vehicle")
    missing, unknown = set(inventory) - set(reports), set(reports) - set(inventory)
    if missing or unknown:
        raise ManifestInventoryMismatch(
            f"ECUs missing {sorted(missing)}, not in the inventory {sorted(unknown)}",
            missing=sorted(missing),
            unknown=sorted(unknown),
        )
    verified: dict[str, EcuVersionReport] = {}
    for serial, envelope in sorted(reports.items()):
        if not isinstance(envelope, dict) or not isinstance(envelope.get("signed"), dict):
            raise ManifestFormatError(f"report of ECU {serial} malformed")
        if not _verify_signature(
            inventory[serial], envelope.get("signature"), canonical_bytes(envelope["signed"])
        ):
            raise ManifestSignatureInvalid(
                f"report of ECU {serial} is not signed by that ECU's key", ecu_serial=serial
            )
        report = EcuVersionReport.from_dict(envelope["signed"])
        if report.ecu_serial != serial:
            raise ManifestInventoryMismatch(
                f"report filed under {serial} names {report.ecu_serial}"
            )
        if report.counter <= previous.get(serial, -1):
            raise ManifestCounterReused(
                f"ECU {serial} report counter {report.counter} not above {previous[serial]}",
                ecu_serial=serial,
            )
        if report.attack_detected:
            raise ManifestAttackReported(
                f"ECU {serial} reports an attack: {report.attack_detected}", ecu_serial=serial
            )
        verified[serial] = report
    return VerifiedManifest(str(signed.get("vin")), primary, verified)


def verify_manifest(
    manifest_bytes: bytes,
    expected_inventory: Mapping[str, EcuPublicKey],
    previous_counters: Mapping[str, int],
    *,
    vin: str | None = None,
) -> VerifiedManifest:
    """Verify a manifest against the vehicle's inventory ``{ECU serial: Ed25519 public key}``."""
    try:
        return _check(manifest_bytes, expected_inventory, previous_counters, vin)
    except ManifestError as error:
        _log.warning("manifest_refused", code=error.code, reason=str(error))
        raise
