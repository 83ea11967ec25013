"""UDS (ISO 14229-1): every request gets a positive response or a standard NRC, never an exception,
and a refused request leaves the car's committed state as it was (a refused activation may only add
its DTC).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.dids import Did
from forecourt.vehicle.ecu import Ecu
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.uds.nrc import Nrc
from forecourt.vehicle.uds.security_access import compute_key, derive_ecu_secret
from tests.fuzz.mutations import mutated_bytes
from tests.fuzz.settings import fuzz
from tests.vehicle.conftest import OEM_SECRET, SPEC

SERIALS = {spec.address: spec.serial_number for spec in SPEC.ecus}
SERVICES = (0x10, 0x11, 0x14, 0x19, 0x22, 0x27, 0x29, 0x2E, 0x31, 0x34, 0x36, 0x37, 0x38, 0x3E)
STANDARD_NRCS = frozenset(int(n) for n in Nrc) - {Nrc.RESPONSE_PENDING}


def _u16(value: int) -> bytes:
    return struct.pack(">H", value)


def _file_transfer(mode: int, path: bytes, size: int, width: int, length_field: int) -> bytes:
    sizes = size.to_bytes(8, "big")[-width:] if width else b""
    return bytes([mode]) + _u16(length_field) + path + b"\x00" + bytes([width]) + sizes * 2


def _bodies(sid: int) -> st.SearchStrategy[bytes]:
    """Bodies shaped like the service's request, with the fields pushed to their edges."""
    anything = st.binary(max_size=24)
    did = st.sampled_from([int(d) for d in Did]) | st.integers(0, 0xFFFF)
    shaped: dict[int, st.SearchStrategy[bytes]] = {
        0x22: st.lists(did, max_size=4).map(lambda ds: b"".join(_u16(d) for d in ds)),
        0x2E: st.tuples(did, st.binary(max_size=40)).map(lambda p: _u16(p[0]) + p[1]),
        0x31: st.tuples(
            st.integers(0, 255), st.sampled_from([0xFF00, 0xFF01]) | st.integers(0, 0xFFFF),
            st.binary(max_size=12),
        ).map(lambda p: bytes([p[0]]) + _u16(p[1]) + p[2]),
        0x38: st.builds(
            _file_transfer, st.integers(0, 7), st.binary(max_size=20),
            st.sampled_from([0, 1, 2**31, 2**64 - 1]) | st.integers(0, 2**20),
            st.integers(0, 9), st.integers(0, 0xFFFF),
        ),
        0x34: st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=10)).map(
            lambda p: bytes(p[:2]) + p[2]
        ),
        0x36: st.tuples(st.integers(0, 255), st.binary(max_size=64)).map(
            lambda p: bytes([p[0]]) + p[1]
        ),
    }  # fmt: skip
    base = shaped.get(sid, st.binary(max_size=4))
    return st.one_of(base, anything, base.flatmap(mutated_bytes))


requests = st.one_of(
    st.sampled_from(SERVICES).flatmap(lambda sid: _bodies(sid).map(lambda b: bytes([sid]) + b)),
    st.binary(min_size=1, max_size=32),
)


class UdsTester:
    """Drives one ECU in-process and remembers every response it sent."""

    def __init__(self, ecu: Ecu) -> None:
        self.ecu = ecu
        self.sent: list[bytes] = []

    def send(self, request: bytes) -> bytes:
        self.sent = []

        async def respond(data: bytes) -> None:
            self.sent.append(data)

        asyncio.run(self.ecu.handle(request, respond))
        return self.sent[-1] if self.sent else b""

    def enter(self, level: str) -> None:
        """Put the ECU in ``level``: default, extended, or programming with 0x27 unlocked."""
        self.send(b"\x10\x01")
        if level == "extended":
            assert self.send(b"\x10\x03")[0] == 0x50
        elif level == "unlocked":
            assert self.send(b"\x10\x02")[0] == 0x50
            seed = self.send(b"\x27\x01")[2:]
            secret = derive_ecu_secret(OEM_SECRET, SERIALS[self.ecu.address])
            assert self.send(b"\x27\x02" + compute_key(secret, 1, seed))[0] == 0x67


def _committed(store: CarStore) -> dict[str, Any]:
    """What a refusal must not change: the state file minus its DTC log and commit generation."""
    doc: dict[str, Any] = json.loads(store.state_path.read_bytes())
    doc.pop("generation")
    doc.pop("dtcs")
    return doc


@pytest.fixture
def car(make_store: Callable[[str], CarStore], services: CarServices) -> Car:
    return Car(make_store("car"), services)


@fuzz(500, fixtures=True)
@given(
    st.sampled_from(sorted(SERIALS)),
    st.sampled_from(["default", "extended", "unlocked"]),
    requests,
)
def test_every_request_gets_a_response_or_standard_nrc_and_refusals_change_nothing(
    car: Car, address: int, level: str, request: bytes
) -> None:
    tester = UdsTester(car.ecus[address])
    tester.enter(level)
    before_bytes = car.store.state_path.read_bytes()
    before = _committed(car.store)
    sid = request[0]
    with capture_logs() as logs:
        final = tester.send(request)
    suppressed = not final and len(request) > 1 and request[1] & 0x80
    if suppressed:
        return  # suppressPosMsgIndicationBit: a positive response is not sent
    assert final, f"no response to {request.hex()}"
    if final[0] == 0x7F:
        assert final[1] == sid and len(final) == 3, final.hex()
        assert final[2] in STANDARD_NRCS, f"{request.hex()} -> NRC {final[2]:#04x}"
        assert _committed(car.store) == before, f"{request.hex()} refused but changed the state"
        if sid != 0x31:  # only a refused activation records a DTC
            assert car.store.state_path.read_bytes() == before_bytes
        refusals = [e for e in logs if e["event"] == "uds_refused"]
        assert refusals and refusals[-1]["nrc"] == f"{final[2]:#04x}", "refusal not logged"
    else:
        assert final[0] == sid + 0x40, f"{request.hex()} -> {final.hex()}"


@fuzz(60, fixtures=True)
@given(st.binary(min_size=1, max_size=2048), st.binary(max_size=8))
def test_an_uploaded_garbage_bundle_is_refused_with_an_nrc_and_applies_nothing(
    car: Car, bundle: bytes, name_suffix: bytes
) -> None:
    tester = UdsTester(car.ecus[0x1000])
    tester.enter("unlocked")
    name = b"bundle" + name_suffix.hex().encode()
    request = _file_transfer(0x03, name, len(bundle), 4, len(name))  # ReplaceFile
    assert tester.send(b"\x38" + request)[0] == 0x78
    assert tester.send(b"\x36\x01" + bundle) == b"\x76\x01"
    assert tester.send(b"\x37")[0] == 0x77
    before = _committed(car.store)
    final = tester.send(b"\x31\x01\xff\x00" + name)
    assert final[:2] == b"\x7f\x31" and final[2] in STANDARD_NRCS, final.hex()
    assert _committed(car.store) == before
