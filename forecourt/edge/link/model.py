"""What the edge learns from a car, as typed values, and the pure decoders of the DIDs.

The DID numbers and encodings are those of docs PROTOCOL.md (ISO 14229-1 annex C identifiers
F18C-F195, and the OEM range FD00-FD05 for activation). Decoding lives here, apart from any I/O,
so the DoIP link and the in-memory link produce the same values from the same bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from forecourt.edge.link.errors import UnexpectedResponse


class Did(IntEnum):
    """Data identifiers the edge reads, and the one it writes (PROTOCOL.md)."""

    SPARE_PART_NUMBER = 0xF187
    ECU_SOFTWARE_VERSION = 0xF189
    ECU_SERIAL_NUMBER = 0xF18C
    VIN = 0xF190
    ECU_HARDWARE_NUMBER = 0xF191
    SUPPLIER_SOFTWARE_VERSION = 0xF195
    ACTIVATION_NONCE = 0xFD00
    ACTIVATION_COUNTER = 0xFD01
    FEATURE_STATUS = 0xFD02
    ECU_IDENTITY = 0xFD03
    VERSION_REPORT = 0xFD04  # signed: the gateway's vehicle manifest, or the ECU's own report
    PRECONDITIONS = 0xFD05
    VEHICLE_STATUS = 0xFD06  # unsigned summary: installed images by address, last bundle id
    CERTIFICATE_REVOCATION_LIST = 0xFD07  # written: the issuing CA's CRL, to the gateway


GATEWAY = 0x1000
KNOWN_ECUS = (0x1000, 0x1001, 0x1002, 0x1003)  # CGW, T-Box, head unit, ADAS (PROTOCOL.md)
ROUTINE_ACTIVATE = 0xFF00
ROUTINE_CHECK_PRECONDITIONS = 0xFF01
READ_DATA_BY_IDENTIFIER = 0x22


class ResetType(IntEnum):
    """ECUReset (0x11) resetType, ISO 14229-1 §11.3."""

    HARD_RESET = 0x01
    KEY_OFF_ON_RESET = 0x02
    SOFT_RESET = 0x03


@dataclass(frozen=True, slots=True)
class DiscoveredVehicle:
    """A DoIP vehicle identification response (ISO 13400-2 payload type 0x0004)."""

    vin: str
    address: str
    logical_address: int
    eid: bytes
    gid: bytes
    further_action_required: int = 0


@dataclass(frozen=True, slots=True)
class FeatureStatus:
    feature: str
    ecu: int
    valid_until: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class Preconditions:
    """DID FD05: power mode (0 off, 1 accessory, 2 on), battery voltage, vehicle stationary."""

    power_mode: int
    battery_millivolts: int
    stationary: bool


@dataclass(frozen=True, slots=True)
class EcuIdentity:
    """One ECU's identification DIDs and its identity keys (FD03)."""

    address: int
    serial_number: str
    hardware_number: str
    software_version: str
    supplier_software_version: str
    spare_part_number: str
    signing_public_key_pem: str
    sealing_public_key: bytes
    certificate_pem: str


@dataclass(frozen=True, slots=True)
class VehicleIdentity:
    """Identity and inventory of a car, plus the gateway's activation state."""

    vin: str
    ecus: tuple[EcuIdentity, ...]
    activation_nonce: bytes
    activation_counter: int
    feature_status: tuple[FeatureStatus, ...]
    preconditions: Preconditions

    def ecu(self, address: int) -> EcuIdentity | None:
        return next((e for e in self.ecus if e.address == address), None)


@dataclass(frozen=True, slots=True)
class TransferReceipt:
    """A completed transfer: what the ECU stored, and what it cost on the wire.

    ``bytes_sent`` counts TransferData payload bytes handed to the network, including a block lost
    in a cut; ``resumed_from`` lists the ECU-confirmed positions each resumption started from.
    """

    ecu: int
    name: str
    size: int
    sha256: str
    bytes_sent: int
    block_size: int
    resumed_from: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """RoutineControl FF00: the new activation counter and each ECU's outcome (0 = applied)."""

    activation_counter: int
    ecu_results: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dtc:
    """One DTC from ReadDTCInformation reportDTCByStatusMask: 3-byte code and status byte."""

    code: int
    status: int


@dataclass(frozen=True, slots=True)
class VersionReport:
    """DID FD04 as received: the signed Uptane vehicle version manifest (gateway) or one ECU's
    signed report. ``raw`` is what the signatures cover (verify it with
    :func:`forecourt.trust.manifest.verify_manifest`); ``document`` is its JSON, unverified."""

    raw: bytes

    @property
    def document(self) -> dict[str, Any]:
        value = json.loads(self.raw)
        if not isinstance(value, dict):
            raise ValueError("version report is not a JSON object")
        return value


@dataclass(frozen=True, slots=True)
class VehicleStatus:
    """DID FD06: the car's unsigned summary (VIN, activation counter, last bundle id, images by
    ECU address, features). Handy for display and diagnosis; never evidence (not signed)."""

    raw: bytes

    @property
    def document(self) -> dict[str, Any]:
        value = json.loads(self.raw)
        if not isinstance(value, dict):
            raise ValueError("vehicle status is not a JSON object")
        return value


# decoders ---------------------------------------------------------------------------------------
def _bad(did: int, detail: str, ecu: int) -> UnexpectedResponse:
    return UnexpectedResponse(ecu, READ_DATA_BY_IDENTIFIER, f"DID {did:#06x}: {detail}")


def decode_ascii(did: int, raw: bytes, ecu: int) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise _bad(did, "not ASCII", ecu) from None


def decode_json(did: int, raw: bytes, ecu: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise _bad(did, "not JSON", ecu) from None


def decode_counter(raw: bytes, ecu: int) -> int:
    if len(raw) != 4:
        raise _bad(Did.ACTIVATION_COUNTER, f"{len(raw)} bytes, expected 4", ecu)
    return int.from_bytes(raw, "big")


def decode_preconditions(raw: bytes, ecu: int) -> Preconditions:
    if len(raw) != 4:
        raise _bad(Did.PRECONDITIONS, f"{len(raw)} bytes, expected 4", ecu)
    power, millivolts, stationary = struct.unpack(">BHB", raw)
    return Preconditions(power, millivolts, bool(stationary))


def decode_feature_status(raw: bytes, ecu: int) -> tuple[FeatureStatus, ...]:
    items = decode_json(Did.FEATURE_STATUS, raw, ecu)
    try:
        return tuple(
            FeatureStatus(
                feature=str(i["feature"]),
                ecu=int(str(i["ecu"]), 16),
                valid_until=i.get("valid_until"),
                active=bool(i["active"]),
            )
            for i in items
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _bad(Did.FEATURE_STATUS, f"bad entry ({error})", ecu) from None


def decode_identity_keys(raw: bytes, ecu: int) -> tuple[str, bytes, str]:
    """FD03 -> (signing public key PEM, sealing public key, certificate PEM)."""
    doc = decode_json(Did.ECU_IDENTITY, raw, ecu)
    try:
        return (
            str(doc["signing_public_key_pem"]),
            bytes.fromhex(str(doc["sealing_public_key"])),
            str(doc.get("certificate_pem", "")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _bad(Did.ECU_IDENTITY, f"bad identity ({error})", ecu) from None


def decode_routine_results(record: bytes, ecu: int) -> dict[int, int]:
    """FF00 requestRoutineResults: per ECU, address (2 bytes) and outcome (1 byte)."""
    if len(record) % 3:
        raise UnexpectedResponse(ecu, 0x31, f"routine results of {len(record)} bytes")
    return {address: outcome for address, outcome in struct.iter_unpack(">HB", record)}
