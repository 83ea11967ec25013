"""Checking the car's version manifest (DID FD04) against what the edge delivered.

After apply the gateway reports what is installed and active. The edge accepts the activation
only if the report is for this VIN, names the bundle that was delivered, shows the activation
counter moved past the one read at identification, and lists every delivered image at its
digest and length on its ECU. Anything else is a :class:`~forecourt.trust.errors.ManifestError`
with its stable code.

The report's signature is checked by a :class:`ManifestSignatureCheck` (the trust layer's
verifier of per-ECU signed reports plugs in here); the content rules below apply whatever the
signature scheme.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from forecourt.edge.cloud_client import PackageRef
from forecourt.trust.errors import (
    ManifestCounterReused,
    ManifestFormatError,
    ManifestInventoryMismatch,
)

MAX_REPORT_BYTES = 256 * 1024


def bundle_id_of(bundle: bytes) -> str:
    """The bundle identifier the car reports: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(bundle).hexdigest()[:16]


class ManifestSignatureCheck(Protocol):
    def __call__(self, report: bytes) -> None:
        """Raise a ManifestError when the report's signatures do not verify."""
        ...


def no_signature_check(report: bytes) -> None:
    """For cars whose report is unsigned (the simulator today); the content rules still apply."""


@dataclass(frozen=True, slots=True)
class VerifiedManifest:
    vin: str
    activation_counter: int
    bundle_id: str
    report_sha256: str
    installed: tuple[tuple[str, str, str], ...]  # (ecu address, image name, sha256)

    def to_evidence(self) -> dict[str, Any]:
        return {
            "report_sha256": self.report_sha256,
            "activation_counter": self.activation_counter,
            "bundle_id": self.bundle_id,
            "installed": [list(i) for i in self.installed],
        }


def read_report(report: bytes) -> dict[str, Any]:
    if len(report) > MAX_REPORT_BYTES:
        raise ManifestFormatError(f"version report is {len(report)} bytes, above its bound")
    try:
        doc = json.loads(report)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestFormatError(f"version report is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestFormatError("version report is not a JSON object")
    return doc


def applied_bundle(report: bytes) -> tuple[str | None, int]:
    """``(last bundle id, activation counter)`` from a report, for resume decisions."""
    doc = read_report(report)
    bundle_id = doc.get("last_bundle_id")
    counter = doc.get("activation_counter")
    return (
        bundle_id if isinstance(bundle_id, str) else None,
        int(counter) if isinstance(counter, int) else -1,
    )


def verify_manifest(
    report: bytes,
    *,
    vin: str,
    bundle: bytes,
    counter_before: int,
    packages: Sequence[PackageRef],
    signature_check: ManifestSignatureCheck = no_signature_check,
) -> VerifiedManifest:
    signature_check(report)
    doc = read_report(report)
    if doc.get("vin") != vin:
        raise ManifestInventoryMismatch(f"report is for VIN {doc.get('vin')!r}, not {vin}")
    expected_id = bundle_id_of(bundle)
    if doc.get("last_bundle_id") != expected_id:
        raise ManifestInventoryMismatch(
            f"report names bundle {doc.get('last_bundle_id')!r}, delivered {expected_id}"
        )
    counter = doc.get("activation_counter")
    if not isinstance(counter, int) or counter <= counter_before:
        raise ManifestCounterReused(
            f"activation counter {counter!r} did not move past {counter_before}"
        )
    installed: dict[tuple[str, str], tuple[str, int]] = {}
    for ecu in doc.get("ecus", []):
        for name, image in (ecu.get("images") or {}).items():
            installed[(str(ecu.get("address")).upper(), name)] = (
                str(image.get("sha256")),
                int(image.get("length", -1)),
            )
    found: list[tuple[str, str, str]] = []
    for ref in packages:
        key = (f"{ref.ecu_address:04X}", ref.name)
        got = installed.get(key)
        if got != (ref.sha256, ref.size):
            raise ManifestInventoryMismatch(
                f"ECU {key[0]} reports {ref.name} as {got!r}, delivered {ref.sha256[:16]}…"
            )
        found.append((key[0], ref.name, ref.sha256))
    return VerifiedManifest(
        vin=vin,
        activation_counter=counter,
        bundle_id=expected_id,
        report_sha256=hashlib.sha256(report).hexdigest(),
        installed=tuple(sorted(found)),
    )
