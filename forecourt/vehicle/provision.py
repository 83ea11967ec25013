"""Factory provisioning: give a car its ECUs, keys, certificates and the pinned OEM root.

Run once per car (``forecourt vehicle provision``). Each ECU gets an Ed25519 signing key (version
reports) and an X25519 sealing key (secrets sealed to it), written under ``keys/`` with mode 0600,
a seed/key secret derived from the OEM secret (:func:`derive_ecu_secret`), and, when an
:class:`EcuCertificateIssuer` is given, an identity certificate from the OEM CA. The OEM root is
pinned in the committed state; nothing later can replace it except a signed root rotation.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from forecourt.core.vehicle import Vehicle
from forecourt.logging import get_logger
from forecourt.vehicle.car import security_secret_path
from forecourt.vehicle.seams import EcuCertificateIssuer
from forecourt.vehicle.storage import CarState, CarStore, EcuRecord
from forecourt.vehicle.uds.security_access import derive_ecu_secret

_log = get_logger("vehicle.provision")

EcuKeys = tuple[Ed25519PrivateKey, X25519PrivateKey]


class AlreadyProvisioned(Exception):
    """The car already has a state: provisioning twice would replace its keys."""


@dataclass(frozen=True, slots=True)
class EcuSpec:
    address: int
    name: str
    serial_number: str
    hardware_number: str
    software_version: str


@dataclass(frozen=True, slots=True)
class CarSpec:
    vin: str
    option_codes: tuple[str, ...]
    ecus: tuple[EcuSpec, ...]


def spec_from_vehicle(vehicle: Vehicle) -> CarSpec:
    """The factory configuration of a core :class:`Vehicle` (its ECU inventory decides ADAS)."""
    return CarSpec(
        vin=vehicle.vin.value,
        option_codes=tuple(sorted(vehicle.option_codes)),
        ecus=tuple(
            EcuSpec(
                e.logical_address, e.role.value, e.serial, e.hardware_number, e.software_version
            )
            for e in vehicle.ecus
        ),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def provision(
    directory: Path,
    spec: CarSpec,
    *,
    oem_secret: bytes,
    oem_root_pem: str = "",
    oem_chain_pem: str = "",
    crl_pem: str = "",
    ecu_keys: Mapping[int, EcuKeys] | None = None,
    issuer: EcuCertificateIssuer | None = None,
    trust_state: Mapping[str, Any] | None = None,
) -> CarStore:
    """Create the car's store; refuses to overwrite an existing car.

    ``trust_state`` pins the OEM's director and image roots for the bundle verifier
    (:func:`forecourt.vehicle.trust_adapter.factory_trust_state`); ``oem_root_pem`` (with the
    issuing CA in ``oem_chain_pem`` and optionally its CRL) is the anchor of UDS 0x29.
    """
    store = CarStore(directory)
    if store.exists():
        raise AlreadyProvisioned(f"{spec.vin} already provisioned at {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    keys_dir = store.keys_dir()
    records: dict[int, EcuRecord] = {}
    for ecu in spec.ecus:
        signing, sealing = (ecu_keys or {}).get(ecu.address) or (
            Ed25519PrivateKey.generate(),
            X25519PrivateKey.generate(),
        )
        signing_public = signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        sealing_public = sealing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        for kind, key in (("signing", signing), ("sealing", sealing)):
            pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            _write_private(keys_dir / f"{ecu.address:04X}-{kind}.pem", pem)
        _write_private(
            security_secret_path(store, ecu.address),
            derive_ecu_secret(oem_secret, ecu.serial_number),
        )
        certificate = (
            issuer.issue_ecu_certificate(
                spec.vin, ecu.serial_number, signing_public, sealing_public
            )
            if issuer is not None
            else ""
        )
        records[ecu.address] = EcuRecord(
            address=ecu.address,
            name=ecu.name,
            serial_number=ecu.serial_number,
            hardware_number=ecu.hardware_number,
            software_version=ecu.software_version,
            supplier_software_version=ecu.software_version,
            spare_part_number=f"{ecu.hardware_number}-SP",
            certificate_pem=certificate,
            signing_public_key_pem=signing.public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            sealing_public_key=sealing_public.hex(),
        )
    vin_hash = hashlib.sha256(spec.vin.encode()).digest()
    state = CarState(
        vin=spec.vin,
        eid=(bytes([vin_hash[0] & 0xFE | 0x02]) + vin_hash[1:6]).hex(),  # locally administered
        gid=vin_hash[6:12].hex(),
        option_codes=list(spec.option_codes),
        ecus=records,
        oem_root_pem=oem_root_pem,
        oem_chain_pem=oem_chain_pem,
        crl_pem=crl_pem,
        last_verified_at=datetime.now(UTC).isoformat(),
        trust_state=dict(trust_state or {}),
    )
    store.create(state)
    _log.info("car_provisioned", vin=spec.vin, ecus=[f"{a:04X}" for a in records])
    return store
