"""ISO 13400-2 frames: pure parse and build, no I/O.

Every parser either returns a typed message or raises :class:`DoipHeaderError` carrying the
generic header negative-acknowledge code the entity must send (ISO 13400-2 table 19) and whether
the socket must be closed afterwards. Nothing else escapes, so garbage from the wire becomes a
NACK, never a crash.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

HEADER_LENGTH = 8
SUPPORTED_VERSIONS = frozenset({0x02, 0x03})
DEFAULT_VERSION = 0x02
VIN_LENGTH = 17
EID_LENGTH = 6
GID_LENGTH = 6


class PayloadType(IntEnum):
    """ISO 13400-2 table 17."""

    GENERIC_NACK = 0x0000
    VEHICLE_IDENTIFICATION_REQUEST = 0x0001
    VEHICLE_IDENTIFICATION_REQUEST_EID = 0x0002
    VEHICLE_IDENTIFICATION_REQUEST_VIN = 0x0003
    VEHICLE_ANNOUNCEMENT = 0x0004
    ROUTING_ACTIVATION_REQUEST = 0x0005
    ROUTING_ACTIVATION_RESPONSE = 0x0006
    ALIVE_CHECK_REQUEST = 0x0007
    ALIVE_CHECK_RESPONSE = 0x0008
    ENTITY_STATUS_REQUEST = 0x4001
    ENTITY_STATUS_RESPONSE = 0x4002
    POWER_MODE_REQUEST = 0x4003
    POWER_MODE_RESPONSE = 0x4004
    DIAGNOSTIC_MESSAGE = 0x8001
    DIAGNOSTIC_MESSAGE_ACK = 0x8002
    DIAGNOSTIC_MESSAGE_NACK = 0x8003


class GenericNackCode(IntEnum):
    """ISO 13400-2 table 19: generic DoIP header negative acknowledge codes."""

    INCORRECT_PATTERN_FORMAT = 0x00
    UNKNOWN_PAYLOAD_TYPE = 0x01
    MESSAGE_TOO_LARGE = 0x02
    OUT_OF_MEMORY = 0x03
    INVALID_PAYLOAD_LENGTH = 0x04


class DiagnosticNackCode(IntEnum):
    """ISO 13400-2 table 26: diagnostic message negative acknowledge codes."""

    INVALID_SOURCE_ADDRESS = 0x02
    UNKNOWN_TARGET_ADDRESS = 0x03
    DIAGNOSTIC_MESSAGE_TOO_LARGE = 0x04
    OUT_OF_MEMORY = 0x05
    TARGET_UNREACHABLE = 0x06
    UNKNOWN_NETWORK = 0x07
    TRANSPORT_PROTOCOL_ERROR = 0x08


class RoutingActivationCode(IntEnum):
    """ISO 13400-2 table 48: routing activation response codes."""

    UNKNOWN_SOURCE_ADDRESS = 0x00
    ALL_SOCKETS_REGISTERED = 0x01
    DIFFERENT_SOURCE_ADDRESS = 0x02
    SOURCE_ADDRESS_ALREADY_ACTIVE = 0x03
    MISSING_AUTHENTICATION = 0x04
    REJECTED_CONFIRMATION = 0x05
    UNSUPPORTED_ACTIVATION_TYPE = 0x06
    SUCCESS = 0x10


class PowerMode(IntEnum):
    """ISO 13400-2 table 41: diagnostic power mode."""

    NOT_READY = 0x00
    READY = 0x01
    NOT_SUPPORTED = 0x02


# Payload types whose length is fixed by the standard (None: variable, checked by the parser).
_FIXED_LENGTH: dict[PayloadType, tuple[int, ...]] = {
    PayloadType.VEHICLE_IDENTIFICATION_REQUEST: (0,),
    PayloadType.VEHICLE_IDENTIFICATION_REQUEST_EID: (EID_LENGTH,),
    PayloadType.VEHICLE_IDENTIFICATION_REQUEST_VIN: (VIN_LENGTH,),
    PayloadType.ROUTING_ACTIVATION_REQUEST: (7, 11),
    PayloadType.ALIVE_CHECK_REQUEST: (0,),
    PayloadType.ALIVE_CHECK_RESPONSE: (2,),
    PayloadType.ENTITY_STATUS_REQUEST: (0,),
    PayloadType.POWER_MODE_REQUEST: (0,),
}
DIAGNOSTIC_MESSAGE_MIN_LENGTH = 5  # source + target address + at least one UDS byte


class DoipHeaderError(Exception):
    """A frame the entity must refuse with a generic header NACK (and maybe close the socket)."""

    def __init__(self, code: GenericNackCode, reason: str, *, close_socket: bool) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason
        self.close_socket = close_socket


@dataclass(frozen=True, slots=True)
class DoipHeader:
    protocol_version: int
    payload_type: PayloadType
    payload_length: int


def parse_header(data: bytes, max_payload_length: int) -> DoipHeader:
    """Check a generic DoIP header (ISO 13400-2 figure 9 order of checks)."""
    if len(data) != HEADER_LENGTH:
        raise DoipHeaderError(
            GenericNackCode.INCORRECT_PATTERN_FORMAT, "short header", close_socket=True
        )
    version, inverse, raw_type, length = struct.unpack("!BBHL", data)
    if inverse != version ^ 0xFF or (version not in SUPPORTED_VERSIONS and version != 0xFF):
        raise DoipHeaderError(
            GenericNackCode.INCORRECT_PATTERN_FORMAT,
            f"protocol version {version:#04x}/{inverse:#04x}",
            close_socket=True,
        )
    try:
        payload_type = PayloadType(raw_type)
    except ValueError:
        raise DoipHeaderError(
            GenericNackCode.UNKNOWN_PAYLOAD_TYPE,
            f"payload type {raw_type:#06x}",
            close_socket=False,
        ) from None
    if length > max_payload_length:
        raise DoipHeaderError(
            GenericNackCode.MESSAGE_TOO_LARGE,
            f"{length} bytes > {max_payload_length}",
            close_socket=False,
        )
    fixed = _FIXED_LENGTH.get(payload_type)
    if (fixed is not None and length not in fixed) or (
        payload_type is PayloadType.DIAGNOSTIC_MESSAGE and length < DIAGNOSTIC_MESSAGE_MIN_LENGTH
    ):
        raise DoipHeaderError(
            GenericNackCode.INVALID_PAYLOAD_LENGTH,
            f"{payload_type.name} with {length} bytes",
            close_socket=True,
        )
    return DoipHeader(version, payload_type, length)


def build_frame(
    payload_type: PayloadType, payload: bytes, protocol_version: int = DEFAULT_VERSION
) -> bytes:
    return (
        struct.pack("!BBHL", protocol_version, protocol_version ^ 0xFF, payload_type, len(payload))
        + payload
    )


@dataclass(frozen=True, slots=True)
class RoutingActivationRequest:
    source_address: int
    activation_type: int


@dataclass(frozen=True, slots=True)
class DiagnosticMessage:
    source_address: int
    target_address: int
    user_data: bytes | memoryview  # a view into the received frame: TransferData is not copied


def parse_routing_activation(payload: bytes) -> RoutingActivationRequest:
    source, activation_type = struct.unpack_from("!HB", payload)
    return RoutingActivationRequest(source, activation_type)


def parse_diagnostic_message(payload: bytes) -> DiagnosticMessage:
    source, target = struct.unpack_from("!HH", payload)
    return DiagnosticMessage(source, target, memoryview(payload)[4:])  # no copy of 1 MiB blocks


def generic_nack(code: GenericNackCode) -> bytes:
    return build_frame(PayloadType.GENERIC_NACK, bytes([code]))


def vehicle_identification_response(
    vin: str, logical_address: int, eid: bytes, gid: bytes, *, further_action: int = 0x00
) -> bytes:
    """0x0004 vehicle announcement / identification response, with VIN/GID sync status 0x00."""
    payload = struct.pack(
        "!17sH6s6sBB", vin.encode("ascii"), logical_address, eid, gid, further_action, 0x00
    )
    return build_frame(PayloadType.VEHICLE_ANNOUNCEMENT, payload)


def routing_activation_response(
    tester_address: int, entity_address: int, code: RoutingActivationCode
) -> bytes:
    payload = struct.pack("!HHBL", tester_address, entity_address, code, 0)
    return build_frame(PayloadType.ROUTING_ACTIVATION_RESPONSE, payload)


def alive_check_response(tester_address: int) -> bytes:
    return build_frame(PayloadType.ALIVE_CHECK_RESPONSE, struct.pack("!H", tester_address))


def entity_status_response(open_sockets: int, max_sockets: int, max_data_size: int) -> bytes:
    """0x4002 with node type 0x00 (gateway) and the largest diagnostic message we accept."""
    payload = struct.pack("!BBBL", 0x00, max_sockets, open_sockets, max_data_size)
    return build_frame(PayloadType.ENTITY_STATUS_RESPONSE, payload)


def power_mode_response(mode: PowerMode) -> bytes:
    return build_frame(PayloadType.POWER_MODE_RESPONSE, bytes([mode]))


def diagnostic_ack(source: int, target: int) -> bytes:
    """0x8002 from the ECU (source) to the tester (target), ack code 0x00, no echoed data."""
    return build_frame(PayloadType.DIAGNOSTIC_MESSAGE_ACK, struct.pack("!HHB", source, target, 0))


def diagnostic_nack(source: int, target: int, code: DiagnosticNackCode) -> bytes:
    return build_frame(
        PayloadType.DIAGNOSTIC_MESSAGE_NACK, struct.pack("!HHB", source, target, code)
    )


def diagnostic_message(source: int, target: int, user_data: bytes) -> bytes:
    header = struct.pack("!HH", source, target)
    return build_frame(PayloadType.DIAGNOSTIC_MESSAGE, header + user_data)
