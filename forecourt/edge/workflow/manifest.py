"""Checking the car's vehicle version manifest (DID FD04) against what the edge delivered.

FD04 of the gateway is the signed Uptane vehicle version manifest: the gateway signs over VIN
and every ECU's own report, and each ECU signs its report with its own Ed25519 key. The edge
verifies it with :func:`forecourt.trust.manifest.verify_manifest` against the inventory read at
identification — ECU serial → the signing key FD03 gave, each ECU certificate first checked by
``certificate_check`` against the OEM root — and the report counters of the previous read, so a
replayed manifest is refused. Then the content rules, with their stable
:class:`~forecourt.trust.errors.ManifestError` codes:

* every ECU reports an activation counter above the one read at identification;
* every delivered image is installed on its ECU at the delivered digest and length.

:func:`already_applied` asks the same question before the apply routine runs (after a crash
between the apply and its commit): a car whose verified manifest already shows the delivered
images and a counter past the identification one has applied this bundle (its nonce, or its
single-use counter, could not have been used by another), so the routine is not run again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forecourt.edge.cloud_client import PackageRef
from forecourt.trust.errors import (
    ManifestCounterReused,
    ManifestError,
    ManifestInventoryMismatch,
)
from forecourt.trust.manifest import VerifiedManifest as TrustManifest
from forecourt.trust.manifest import verify_manifest as verify_signed_manifest

#: Checks one ECU's identity certificate (PEM) for (car's VIN, serial, raw signing key); raises
#: ManifestError when it does not chain to the OEM root or names another car, ECU or key.
CertificateCheck = Callable[[str, str, str, bytes], None]


def no_certificate_check(certificate_pem: str, vin: str, serial: str, signing_key: bytes) -> None:
    """For cars provisioned without ECU certificates (keys read from FD03 are trusted as read)."""


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    address: int
    serial: str
    signing_key: bytes
    certificate_pem: str


def inventory_of(
    ecus: Sequence[Mapping[str, Any]],
    certificate_check: CertificateCheck = no_certificate_check,
    *,
    vin: str,
) -> dict[str, InventoryEntry]:
    """``{serial: entry}`` from the ECUs of car ``vin`` stored at identification, certificates
    checked: an ECU certificate issued for another car (a swapped or cloned ECU) is refused."""
    inventory: dict[str, InventoryEntry] = {}
    for ecu in ecus:
        serial = str(ecu["serial"])
        key_hex = str(ecu.get("signing_key") or "")
        if not key_hex:
            raise ManifestInventoryMismatch(f"ECU {serial} gave no signing key at identification")
        key = bytes.fromhex(key_hex)
        pem = str(ecu.get("certificate_pem") or "")
        certificate_check(pem, vin, serial, key)
        inventory[serial] = InventoryEntry(int(str(ecu["address"]), 16), serial, key, pem)
    return inventory


@dataclass(frozen=True, slots=True)
class VerifiedManifest:
    vin: str
    activation_counter: int
    report_sha256: str
    counters: Mapping[str, int]
    installed: tuple[tuple[str, str, str], ...]  # (ECU address, image name, sha256)

    def to_evidence(self) -> dict[str, Any]:
        return {
            "report_sha256": self.report_sha256,
            "activation_counter": self.activation_counter,
            "report_counters": dict(sorted(self.counters.items())),
            "installed": [list(i) for i in self.installed],
        }


def verify_signatures(
    report: bytes,
    *,
    vin: str,
    inventory: Mapping[str, InventoryEntry],
    previous_counters: Mapping[str, int],
) -> TrustManifest:
    """The trust layer's verification: primary and per-ECU signatures, inventory, counters."""
    keys = {serial: entry.signing_key for serial, entry in inventory.items()}
    return verify_signed_manifest(report, keys, previous_counters, vin=vin)


def check_content(
    manifest: TrustManifest,
    report: bytes,
    *,
    inventory: Mapping[str, InventoryEntry],
    counter_before: int,
    packages: Sequence[PackageRef],
) -> VerifiedManifest:
    """The activation rules over a manifest whose signatures verified."""
    by_address = {entry.address: serial for serial, entry in inventory.items()}
    counters = {serial: r.activation_counter for serial, r in manifest.reports.items()}
    low = {serial: c for serial, c in counters.items() if c <= counter_before}
    if low:
        raise ManifestCounterReused(
            f"activation counter did not move past {counter_before} on {sorted(low)}"
        )
    found: list[tuple[str, str, str]] = []
    for ref in packages:
        serial = by_address.get(ref.ecu_address)
        if serial is None:
            raise ManifestInventoryMismatch(
                f"image {ref.name} was delivered for ECU 0x{ref.ecu_address:04X}, not fitted"
            )
        images = {i.name: i for i in manifest.reports[serial].images}
        got = images.get(ref.name)
        if got is None or (got.hashes.get("sha256"), got.length) != (ref.sha256, ref.size):
            raise ManifestInventoryMismatch(
                f"ECU {serial} does not report {ref.name} at {ref.sha256[:16]}…/{ref.size}"
            )
        found.append((f"{ref.ecu_address:04X}", ref.name, ref.sha256))
    return VerifiedManifest(
        vin=manifest.vin,
        activation_counter=min(counters.values()) if counters else counter_before,
        report_sha256=hashlib.sha256(report).hexdigest(),
        counters=manifest.counters,
        installed=tuple(sorted(found)),
    )


def verify_manifest(
    report: bytes,
    *,
    vin: str,
    inventory: Mapping[str, InventoryEntry],
    previous_counters: Mapping[str, int],
    counter_before: int,
    packages: Sequence[PackageRef],
) -> VerifiedManifest:
    """Signatures, then content; raises a ManifestError with its stable code."""
    manifest = verify_signatures(
        report, vin=vin, inventory=inventory, previous_counters=previous_counters
    )
    return check_content(
        manifest,
        report,
        inventory=inventory,
        counter_before=counter_before,
        packages=packages,
    )


def already_applied(
    manifest: TrustManifest,
    report: bytes,
    *,
    inventory: Mapping[str, InventoryEntry],
    counter_before: int,
    packages: Sequence[PackageRef],
) -> bool:
    """Whether a verified manifest read before the apply shows this activation done."""
    try:
        check_content(
            manifest,
            report,
            inventory=inventory,
            counter_before=counter_before,
            packages=packages,
        )
    except ManifestError:
        return False
    return True


def software_changes(
    before: TrustManifest,
    after: TrustManifest,
    *,
    inventory: Mapping[str, InventoryEntry],
    ecus: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Per ECU, the software before and after the change, from two verified manifests.

    This is the UNECE R156 record the cloud keeps per VIN: the installed images (name, digest,
    length) and the activation counter each ECU signed, before the apply and after it. The
    software version is the one read at identification (DID F189); the images identify the
    state after."""
    read = {str(e["serial"]): str(e.get("software") or "") for e in ecus}

    def side(manifest: TrustManifest, serial: str) -> dict[str, Any]:
        report = manifest.reports.get(serial)
        images = [] if report is None else sorted(report.images, key=lambda i: i.name)
        return {
            "software_version": read.get(serial, ""),
            "activation_counter": 0 if report is None else report.activation_counter,
            "images": [
                {"name": i.name, "sha256": i.hashes.get("sha256", ""), "length": i.length}
                for i in images
            ],
        }

    return [
        {
            "serial": serial,
            "address": f"{entry.address:04X}",
            "before": side(before, serial),
            "after": side(after, serial),
        }
        for serial, entry in sorted(inventory.items(), key=lambda item: item[1].address)
    ]
