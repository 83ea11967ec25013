"""A real simulated car, in-process, on a random loopback address, for the DoIP link's tests.

The car is the simulator of ``forecourt.vehicle`` hosted the way tests/vehicle hosts it. Its trust
seams are the simulator's HMAC doubles (tests/vehicle/doubles.py) because the trust layer has no
dealer PKI for UDS 0x29 yet; the link only needs a certificate and a proof function, so swapping
in the real PKI changes the credentials, not the link.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from forecourt.edge.link import DealerCredentials, DoipVehicleLink, LinkConfig
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import DoipEntity, EntityConfig
from forecourt.vehicle.faults import FaultPlan
from forecourt.vehicle.provision import CarSpec, EcuSpec, provision
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.uds.security_access import compute_key, derive_ecu_secret
from tests.vehicle.doubles import (
    HmacAuthenticator,
    HmacBundleVerifier,
    dealer_certificate,
    dealer_proof,
)

OEM_SECRET = b"edge link test oem secret, never a real one"
VIN = "WFCRT0LINKA000077"
SERIALS = {0x1000: "CGW0000000101", 0x1001: "TBO0000000102", 0x1002: "HEA0000000103"}
SPEC = CarSpec(
    vin=VIN,
    option_codes=("NAV",),
    ecus=(
        EcuSpec(0x1000, "cgw", SERIALS[0x1000], "CGW-3-110", "1.0.0"),
        EcuSpec(0x1001, "tbox", SERIALS[0x1001], "TBOX-5-200", "1.1.0"),
        EcuSpec(0x1002, "head_unit", SERIALS[0x1002], "HU-12-400", "2.0.0"),
    ),  # no ADAS controller fitted: 0x1003 is not routed
)


def seed_key(ecu: int, level: int, seed: bytes) -> bytes:
    """The OEM backend's side of 0x27: it knows the OEM secret and the ECU serial."""
    return compute_key(derive_ecu_secret(OEM_SECRET, SERIALS[ecu]), level, seed)


def dealer() -> DealerCredentials:
    return DealerCredentials(dealer_certificate(), lambda c, vin, serial: dealer_proof(c), seed_key)


def impostor() -> DealerCredentials:
    """A valid certificate presented by someone without its private key."""
    return DealerCredentials(dealer_certificate(), lambda c, vin, serial: dealer_proof(c, b"x"))


def random_loopback() -> str:
    rng = random.SystemRandom()
    return f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


@dataclass
class SimulatedCar:
    host: SimulatorHost
    car: Car
    services: CarServices
    entity: DoipEntity
    address: str

    @property
    def faults(self) -> FaultPlan:
        return self.services.faults


def start_car(host: SimulatorHost, directory: Path, spec: CarSpec = SPEC) -> SimulatedCar:
    services = CarServices(
        verifier=HmacBundleVerifier(), authenticator=HmacAuthenticator(), faults=FaultPlan()
    )
    car = Car(provision(directory, spec, oem_secret=OEM_SECRET), services)
    for _ in range(10):
        address = random_loopback()
        try:
            entity = host.start_car(car, EntityConfig(address, announce_to=None))
        except OSError:
            continue
        return SimulatedCar(host, car, services, entity, address)
    raise RuntimeError("no free loopback address")


@pytest.fixture
def host() -> Iterator[SimulatorHost]:
    simulator = SimulatorHost()
    yield simulator
    simulator.close()


@pytest.fixture
def sim(host: SimulatorHost, tmp_path: Path) -> SimulatedCar:
    return start_car(host, tmp_path / "car")


@pytest.fixture
def link(sim: SimulatedCar) -> Iterator[DoipVehicleLink]:
    with DoipVehicleLink(LinkConfig(discovery_timeout=0.5)) as vehicle_link:
        vehicle_link.discover(vin=VIN, addresses=[sim.address])
        yield vehicle_link
