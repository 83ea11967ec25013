"""What a tester may make the car store, and what the car checks before it installs an image.

A file over the per-file bound, or one that would overrun the car's storage quota, is refused
(0x70) when it is announced, before any byte is stored. At apply every image is streamed once
against its signed length and SHA-256 while it is copied into its slot, so bytes changed after
reception are refused (0x72) however the reception digest read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.quota import TransferLimits
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc
from forecourt.vehicle.uds.security_access import compute_key, derive_ecu_secret
from tests.vehicle.conftest import OEM_SECRET
from tests.vehicle.test_apply import MAPS, bundle, fingerprint, receive, services_with

LIMITS = TransferLimits(max_file_bytes=1000, quota_bytes=1500)
GATEWAY_SERIAL = "CGW0000000001"


class UnlockedTester:
    """One tester connection to the gateway, extended session, unlocked with 0x27."""

    def __init__(self, car: Car) -> None:
        self.ecu = car.ecus[0x1000]
        self.session = self.ecu.open_session(0x0E80)
        assert self.send(b"\x10\x03")[0] == 0x50
        seed = self.send(b"\x27\x01")[2:]
        key = compute_key(derive_ecu_secret(OEM_SECRET, GATEWAY_SERIAL), 1, seed)
        assert self.send(b"\x27\x02" + key) == b"\x67\x02"

    def send(self, request: bytes) -> bytes:
        sent: list[bytes] = []

        async def respond(data: bytes) -> None:
            sent.append(data)

        asyncio.run(self.ecu.handle(request, respond, self.session))
        return sent[-1]

    def announce(self, name: str, size: int, mode: int = 0x01) -> bytes:
        path = name.encode()
        sizes = size.to_bytes(4, "big")
        return self.send(
            bytes([0x38, mode]) + len(path).to_bytes(2, "big") + path + b"\x00\x04" + sizes * 2
        )

    def send_file(self, name: str, data: bytes, mode: int = 0x01) -> None:
        assert self.announce(name, len(data), mode)[0] == 0x78
        assert self.send(b"\x36\x01" + data) == b"\x76\x01"
        assert self.send(b"\x37")[0] == 0x77


@pytest.fixture
def car(make_store: Callable[[str], CarStore]) -> Car:
    return Car(make_store("car"), CarServices(transfer_limits=LIMITS))


def _stored(car: Car) -> list[str]:
    return sorted(p.name for p in (car.store.directory / "files").glob("*/*") if p.is_file())


def test_a_file_over_the_per_file_bound_is_refused_before_any_byte_is_stored(car: Car) -> None:
    tester = UnlockedTester(car)
    assert tester.announce("huge.img", 1001) == b"\x7f\x38\x70"
    assert tester.announce("endless.img", 2**32 - 1) == b"\x7f\x38\x70"
    assert _stored(car) == []
    assert tester.send(b"\x36\x01" + b"x" * 10) == b"\x7f\x36\x24"  # nothing to write into


def test_a_file_that_would_overrun_the_cars_quota_is_refused_until_space_is_freed(
    car: Car,
) -> None:
    tester = UnlockedTester(car)
    tester.send_file("maps-a.img", b"a" * 1000)
    assert tester.announce("maps-b.img", 600) == b"\x7f\x38\x70"
    assert _stored(car) == ["maps-a.img"]
    tester.send_file("maps-a.img", b"A" * 1000, mode=0x03)  # a replacement is not counted twice
    path = b"maps-a.img"
    assert tester.send(b"\x38\x02" + len(path).to_bytes(2, "big") + path)[0] == 0x78  # delete
    assert tester.announce("maps-b.img", 600)[0] == 0x78


def test_an_announced_transfer_holds_its_size_against_the_quota_before_its_bytes_arrive(
    car: Car,
) -> None:
    UnlockedTester(car).announce("slow.img", 1000)  # nothing sent yet
    assert UnlockedTester(car).announce("other.img", 600) == b"\x7f\x38\x70"


def test_an_image_changed_after_reception_is_refused_at_apply_and_nothing_is_installed(
    make_store: Callable[[str], CarStore],
) -> None:
    store = make_store("car")
    receive(store, "maps-eu", MAPS)
    car = Car(store, services_with())
    received = car.ecus[0x1000].receiver.completed("maps-eu")
    assert received is not None
    tampered = bytearray(MAPS)
    tampered[-1] ^= 0xFF
    Path(received.path).write_bytes(bytes(tampered))  # same length, other bytes
    again = car.ecus[0x1000].receiver.completed("maps-eu")
    assert again is not None and again.sha256 == received.sha256  # the reception digest, no re-read
    before = fingerprint(car)
    with pytest.raises(NegativeResponse) as refused:
        car.verify_and_apply(bundle())
    assert refused.value.nrc == Nrc.GENERAL_PROGRAMMING_FAILURE
    assert fingerprint(Car(store, services_with())) == before
    assert car.state.dtcs[-1].code == 0xD10072
    assert not list((store.directory / "slots").glob("*/*"))
