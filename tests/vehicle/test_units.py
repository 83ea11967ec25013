"""Pure parts: DoIP header parsing never crashes, S3 timeout, atomic store, safe file names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecourt.vehicle.car import Car
from forecourt.vehicle.doip.frames import DoipHeaderError, parse_header
from forecourt.vehicle.storage import CarStore, StateStoreError
from forecourt.vehicle.transfer import FileReceiver
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc
from forecourt.vehicle.uds.session import DiagnosticSession, SessionState


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@given(st.binary(min_size=8, max_size=8))
def test_any_header_bytes_parse_or_raise_the_typed_error(raw: bytes) -> None:
    try:
        header = parse_header(raw, 4096)
    except DoipHeaderError as error:
        assert error.code in range(5)
    else:
        assert header.payload_length <= 4096


def test_s3_timeout_drops_session_and_authentication() -> None:
    clock = FakeClock()
    session = SessionState(clock)
    session.touch()
    session.change(DiagnosticSession.EXTENDED)
    session.authenticated_role = "technician"
    clock.now = 4.9
    assert not session.touch()
    clock.now = 10.0
    assert session.touch()
    assert session.session is DiagnosticSession.DEFAULT
    assert not session.unlocked


def test_s3_timeout_is_seen_by_the_ecu_on_the_next_request(
    make_store: Callable[[str], CarStore],
) -> None:
    clock = FakeClock()
    from forecourt.vehicle.car import CarServices

    car = Car(make_store("car"), CarServices(clock=clock))
    ecu = car.ecus[0x1000]
    sent: list[bytes] = []

    async def respond(data: bytes) -> None:
        sent.append(data)

    asyncio.run(ecu.handle(b"\x10\x03", respond))
    clock.now = 6.0
    asyncio.run(ecu.handle(b"\x27\x01", respond))
    assert sent[-1] == b"\x7f\x27\x7f"  # back in the default session: 0x27 not supported there


def test_corrupt_state_file_is_a_typed_error(make_store: Callable[[str], CarStore]) -> None:
    store = make_store("car")
    store.state_path.write_bytes(b'{"schema": 1, "vin": ')
    with pytest.raises(StateStoreError):
        store.load()


def test_interrupted_commit_leaves_the_old_state(make_store: Callable[[str], CarStore]) -> None:
    store = make_store("car")
    before = store.state_path.read_bytes()
    state = store.load()
    state.activation_counter = 99

    def crash() -> None:
        raise RuntimeError("power")

    with pytest.raises(RuntimeError):
        store.commit(state, before_replace=crash)
    assert store.state_path.read_bytes() == before
    assert store.load().activation_counter == 0


@pytest.mark.parametrize("path", ["../etc/passwd", ".hidden", "a/../../b", "", "x" * 200])
def test_file_transfer_paths_cannot_escape_the_ecu_directory(tmp_path: Path, path: str) -> None:
    receiver = FileReceiver(tmp_path)
    request = b"\x01" + len(path).to_bytes(2, "big") + path.encode() + b"\x00\x01\x10\x10"
    with pytest.raises(NegativeResponse) as exc:
        receiver.request_file_transfer(request)
    assert exc.value.nrc in (
        Nrc.REQUEST_OUT_OF_RANGE,
        Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT,
    )
    assert list(tmp_path.iterdir()) == []


def _ask(car: Car, address: int, request: bytes) -> bytes:
    sent: list[bytes] = []

    async def respond(data: bytes) -> None:
        sent.append(data)

    asyncio.run(car.ecus[address].handle(request, respond))
    return sent[-1]


def test_a_multi_did_read_answers_the_supported_dids_and_leaves_out_the_others(
    make_store: Callable[[str], CarStore],
) -> None:
    car = Car(make_store("car"))
    counter_before = car.report_counter
    answer = _ask(car, 0x1000, b"\x22\x00\x00\xf1\x90\xab\xcd\xfd\x04")
    vin = car.state.vin.encode()
    assert answer.startswith(b"\x62\xf1\x90" + vin + b"\xfd\x04")
    assert car.report_counter == counter_before + 1


@pytest.mark.parametrize(
    ("address", "request_", "nrc"),
    [
        (0x1001, b"\x22\xfd\x00\x00\x00", Nrc.REQUEST_OUT_OF_RANGE),  # FD00 is the gateway's
        (0x1000, b"\x22\xab\xcd\x00\x00", Nrc.REQUEST_OUT_OF_RANGE),
        (0x1000, b"\x22\xfd\x04" * 9, Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT),
        (0x1000, b"\x22\xfd\x00\x00", Nrc.INCORRECT_MESSAGE_LENGTH_OR_INVALID_FORMAT),
    ],
    ids=["nonce-on-a-non-gateway", "none-supported", "more-than-eight-dids", "odd-length"],
)
def test_a_refused_did_read_commits_nothing(
    make_store: Callable[[str], CarStore], address: int, request_: bytes, nrc: Nrc
) -> None:
    car = Car(make_store("car"))
    state_before = car.store.state_path.read_bytes()
    assert _ask(car, address, request_) == bytes([0x7F, 0x22, nrc])
    assert car.store.state_path.read_bytes() == state_before


def test_an_empty_request_is_refused_with_incorrect_message_length(
    make_store: Callable[[str], CarStore],
) -> None:
    car = Car(make_store("car"))
    assert _ask(car, 0x1000, b"") == b"\x7f\x00\x13"
