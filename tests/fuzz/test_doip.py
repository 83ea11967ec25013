"""DoIP (ISO 13400-2): any header gets the generic NACK the standard names, any byte stream on the
socket leaves the entity serving the next, well-behaved tester.

The expected NACK is computed by :func:`expected_nack`, written from ISO 13400-2 figure 9 (the
order in which an entity checks a header) and table 19 (the codes), not from the parser.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from forecourt.vehicle.car import Car
from forecourt.vehicle.doip import frames
from forecourt.vehicle.doip.entity import UDP_MAX_PAYLOAD, DoipEntity, EntityConfig
from forecourt.vehicle.doip.frames import (
    HEADER_LENGTH,
    DoipHeaderError,
    GenericNackCode,
    PayloadType,
    parse_header,
)
from forecourt.vehicle.storage import CarStore
from tests.fuzz.mutations import mutated_bytes
from tests.fuzz.settings import fuzz
from tests.vehicle.conftest import VIN, RunningCar

MAX_PAYLOAD = 4096
_FIXED = {
    0x0001: (0,), 0x0002: (6,), 0x0003: (17,), 0x0005: (7, 11),
    0x0007: (0,), 0x0008: (2,), 0x4001: (0,), 0x4003: (0,),
}  # fmt: skip  # ISO 13400-2 table 17, the payload types with a fixed length
_KNOWN_TYPES = frozenset(int(t) for t in PayloadType)
_CLOSES = {GenericNackCode.INCORRECT_PATTERN_FORMAT, GenericNackCode.INVALID_PAYLOAD_LENGTH}


def expected_nack(raw: bytes, max_payload: int) -> GenericNackCode | None:
    """The generic header NACK ISO 13400-2 requires for ``raw``, or ``None`` if it is valid."""
    if len(raw) != HEADER_LENGTH:
        return GenericNackCode.INCORRECT_PATTERN_FORMAT
    version, inverse, kind, length = struct.unpack("!BBHL", raw)
    if inverse != 0xFF - version or version not in (0x02, 0x03, 0xFF):
        return GenericNackCode.INCORRECT_PATTERN_FORMAT
    if kind not in _KNOWN_TYPES:
        return GenericNackCode.UNKNOWN_PAYLOAD_TYPE
    if length > max_payload:
        return GenericNackCode.MESSAGE_TOO_LARGE
    if kind in _FIXED and length not in _FIXED[kind]:
        return GenericNackCode.INVALID_PAYLOAD_LENGTH
    if kind == PayloadType.DIAGNOSTIC_MESSAGE and length < 5:
        return GenericNackCode.INVALID_PAYLOAD_LENGTH
    return None


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """Headers near the interesting edges: versions, inverses, types and lengths."""
    version = draw(st.sampled_from([0x02, 0x03, 0xFF, 0x00, 0x01, 0x04]) | st.integers(0, 255))
    inverse = draw(st.just(version ^ 0xFF) | st.integers(0, 255))
    kind = draw(st.sampled_from(sorted(_KNOWN_TYPES)) | st.integers(0, 0xFFFF))
    length = draw(
        st.sampled_from([0, 1, 2, 4, 5, 6, 7, 11, 17, MAX_PAYLOAD, MAX_PAYLOAD + 1, 2**32 - 1])
        | st.integers(0, 2**32 - 1)
    )
    return struct.pack("!BBHL", version, inverse, kind, length)


any_header = st.one_of(headers(), st.binary(max_size=12), headers().flatmap(mutated_bytes))


@fuzz(600)
@given(any_header)
def test_every_header_is_accepted_or_refused_with_the_nack_iso_13400_names(raw: bytes) -> None:
    expected = expected_nack(raw, MAX_PAYLOAD)
    try:
        header = parse_header(raw, MAX_PAYLOAD)
    except DoipHeaderError as error:
        assert error.code is expected, f"{raw.hex()}: {error}"
        assert error.close_socket is (error.code in _CLOSES)
        assert error.reason
    else:
        assert expected is None, f"{raw.hex()} accepted, expected NACK {expected!r}"
        assert header.payload_length <= MAX_PAYLOAD


@fuzz(400)
@given(headers(), st.binary(max_size=64))
def test_every_accepted_frame_has_a_payload_its_parser_reads(raw: bytes, body: bytes) -> None:
    """The header's length check is what guards the payload parsers: it must be sufficient."""
    try:
        header = parse_header(raw, MAX_PAYLOAD)
    except DoipHeaderError:
        return
    payload = (body * (header.payload_length // max(len(body), 1) + 1))[: header.payload_length]
    payload = payload.ljust(header.payload_length, b"\x00")
    if header.payload_type is PayloadType.ROUTING_ACTIVATION_REQUEST:
        request = frames.parse_routing_activation(payload)
        assert 0 <= request.source_address <= 0xFFFF
    elif header.payload_type is PayloadType.DIAGNOSTIC_MESSAGE:
        message = frames.parse_diagnostic_message(payload)
        assert len(message.user_data) == header.payload_length - 4 >= 1


# UDP -------------------------------------------------------------------------------------------
@pytest.fixture
def entity(make_store: Callable[[str], CarStore]) -> DoipEntity:
    return DoipEntity(Car(make_store("car")), EntityConfig("127.0.0.1", announce_to=None))


def _valid_udp_requests() -> list[bytes]:
    return [
        frames.build_frame(PayloadType.VEHICLE_IDENTIFICATION_REQUEST, b""),
        frames.build_frame(PayloadType.VEHICLE_IDENTIFICATION_REQUEST_VIN, VIN.encode()),
        frames.build_frame(PayloadType.VEHICLE_IDENTIFICATION_REQUEST_EID, b"\x00" * 6),
        frames.build_frame(PayloadType.ENTITY_STATUS_REQUEST, b""),
        frames.build_frame(PayloadType.POWER_MODE_REQUEST, b""),
        frames.build_frame(PayloadType.VEHICLE_IDENTIFICATION_REQUEST, b"", 0xFF),
    ]


datagrams = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(_valid_udp_requests()).flatmap(mutated_bytes),
    st.tuples(headers(), st.binary(max_size=40)).map(lambda p: p[0] + p[1]),
)


def _frames_in(data: bytes, *, cut: bool = False) -> list[tuple[int, bytes]]:
    """Split an answer into (payload type, payload); fails on anything that is not DoIP.

    With ``cut``, a last frame cut short is dropped: a socket the entity resets may lose its tail.
    """
    out = []
    while data:
        if cut and len(data) < HEADER_LENGTH:
            break
        version, inverse, kind, length = struct.unpack_from("!BBHL", data)
        assert version == 0x02 and inverse == 0xFD, data.hex()
        assert kind in _KNOWN_TYPES, data.hex()
        payload = data[HEADER_LENGTH : HEADER_LENGTH + length]
        if cut and len(payload) < length:
            break
        assert len(payload) == length, data.hex()
        out.append((kind, payload))
        data = data[HEADER_LENGTH + length :]
    return out


@fuzz(400, fixtures=True)
@given(datagrams)
def test_every_datagram_gets_a_doip_answer_or_silence_and_nacks_are_logged(
    entity: DoipEntity, datagram: bytes
) -> None:
    with capture_logs() as logs:
        reply = entity.handle_udp(datagram)
    if reply is None:
        return
    ((kind, payload),) = _frames_in(reply)
    if kind == PayloadType.GENERIC_NACK:
        assert len(payload) == 1 and payload[0] in set(GenericNackCode)
        expected = expected_nack(datagram[:HEADER_LENGTH], UDP_MAX_PAYLOAD)
        if expected is not None:
            assert payload[0] == expected
        assert [e for e in logs if e["event"] == "doip_udp_refused"], "refusal not logged"
    else:
        assert kind in (PayloadType.VEHICLE_ANNOUNCEMENT, 0x4002, 0x4004)


# TCP over a real socket ------------------------------------------------------------------------
def _routing_activation(tester: int = 0x0E80) -> bytes:
    return frames.build_frame(
        PayloadType.ROUTING_ACTIVATION_REQUEST, struct.pack("!HB", tester, 0) + b"\x00" * 4
    )


@st.composite
def tcp_streams(draw: st.DrawFn) -> bytes:
    """What a broken tester sends: garbage, valid frames, mutated frames, in any order."""
    parts = [_routing_activation()] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 5))):
        choice = draw(st.sampled_from(["garbage", "frame", "mutated", "diag"]))
        if choice == "garbage":
            parts.append(draw(st.binary(min_size=1, max_size=64)))
        elif choice == "frame":
            parts.append(draw(headers()) + draw(st.binary(max_size=32)))
        elif choice == "mutated":
            parts.append(draw(mutated_bytes(_routing_activation())))
        else:
            target = draw(st.sampled_from([0x1000, 0x1001, 0x1003, 0x2000]))
            uds = draw(st.binary(min_size=1, max_size=24))
            frame = frames.diagnostic_message(0x0E80, target, uds)
            parts.append(draw(st.just(frame) | mutated_bytes(frame)))
    return b"".join(parts)


class _LoopErrors:
    """Records what the car's event loop reports as unhandled (a crashed connection handler)."""

    def __init__(self, running: RunningCar) -> None:
        self.errors: list[dict[str, Any]] = []
        self._lock = threading.Lock()

        def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            with self._lock:
                self.errors.append(context)

        loop = running.host.loop
        running.host.call(lambda: loop.set_exception_handler(handler))


def _send_and_drain(address: str, stream: bytes) -> bytes:
    with socket.create_connection((address, 13400), timeout=5) as sock:
        try:
            sock.sendall(stream)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the entity may close first (a NACK that closes the socket): that is allowed
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return received


@pytest.fixture
def loop_errors(running: RunningCar) -> _LoopErrors:
    return _LoopErrors(running)


@fuzz(40, fixtures=True)
@given(tcp_streams())
def test_random_bytes_on_tcp_leave_the_entity_serving_a_good_tester(
    running: RunningCar, loop_errors: _LoopErrors, stream: bytes
) -> None:
    answer = _send_and_drain(running.address, stream)
    for kind, payload in _frames_in(answer, cut=True):
        if kind == PayloadType.GENERIC_NACK:
            assert payload[0] in set(GenericNackCode)
    with running.client() as client:
        assert client.read_data_by_identifier_first(0xF190) == VIN
    assert loop_errors.errors == []
