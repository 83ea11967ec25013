"""Fixtures: provisioned cars on random loopback addresses, driven by stock doipclient/udsoncan."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import udsoncan
from doipclient.connectors import DoIPClientUDSConnector
from udsoncan.client import Client
from udsoncan.typing import ClientConfig

from forecourt.edge.link.transport import FastDoIPClient
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import DoipEntity, EntityConfig
from forecourt.vehicle.faults import FaultPlan
from forecourt.vehicle.provision import CarSpec, EcuSpec, provision
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import PkiTesterAuthenticator
from forecourt.vehicle.uds.security_access import compute_key, derive_ecu_secret
from tests.vehicle.doubles import HmacBundleVerifier
from tests.vehicle.pki import OEM, anchors

OEM_SECRET = b"test oem secret, never a real one"
VIN = "WFCRT0TESTA000042"
SPEC = CarSpec(
    vin=VIN,
    option_codes=("ADS", "NAV"),
    ecus=(
        EcuSpec(0x1000, "cgw", "CGW0000000001", "CGW-3-110", "1.0.0"),
        EcuSpec(0x1001, "tbox", "TBO0000000002", "TBOX-5-200", "1.0.0"),
        EcuSpec(0x1002, "head_unit", "HEA0000000003", "HU-12-400", "1.0.0"),
        EcuSpec(0x1003, "adas", "ADA0000000004", "ADAS-L2P-510", "1.0.0"),
    ),
)


class VariableAscii(udsoncan.DidCodec):
    """A DID codec for variable-length ASCII that reads all remaining bytes."""

    def encode(self, value: str) -> bytes:
        return value.encode("ascii")

    def decode(self, payload: bytes) -> str:
        return payload.decode("ascii")

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


def security_algo(level: int, seed: bytes, params: Any = None) -> bytes:
    """The OEM backend's side of 0x27: it knows the OEM secret and the ECU serial."""
    return compute_key(derive_ecu_secret(OEM_SECRET, "CGW0000000001"), level, seed)


def client_config() -> ClientConfig:
    config = udsoncan.configs.default_client_config.copy()
    config.update(
        {
            "use_server_timing": False,
            "p2_timeout": 2.0,
            "p2_star_timeout": 10.0,
            "request_timeout": 15.0,
            "security_algo": security_algo,
            "data_identifiers": {
                0xF190: udsoncan.AsciiCodec(17),
                0xF18C: VariableAscii(),
                0xF198: VariableAscii(),
                0xFD00: VariableAscii(),
                0xFD02: VariableAscii(),
                0xFD04: VariableAscii(),
            },
        }
    )
    return config


@dataclass
class RunningCar:
    host: SimulatorHost
    store: CarStore
    services: CarServices
    car: Car
    entity: DoipEntity
    address: str

    def client(self, ecu: int = 0x1000, tester: int = 0x0E80) -> Client:
        doip = FastDoIPClient(self.address, ecu, client_logical_address=tester)  # type: ignore[no-untyped-call]
        connection = DoIPClientUDSConnector(doip, close_connection=True)  # type: ignore[no-untyped-call]
        return Client(connection, config=client_config())

    def restart(self) -> None:
        """Power-cycle: a new Car from the same store, on the same address."""
        self.host.stop_car(self.entity)
        self.car = Car(self.store, self.services)
        self.entity = self.host.start_car(self.car, EntityConfig(self.address, announce_to=None))


def random_loopback() -> str:
    rng = random.SystemRandom()
    return f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


@pytest.fixture
def host() -> Iterator[SimulatorHost]:
    simulator = SimulatorHost()
    yield simulator
    simulator.close()


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[[str], CarStore]:
    def make(name: str = "car") -> CarStore:
        return provision(tmp_path / name, SPEC, oem_secret=OEM_SECRET, **anchors(OEM))

    return make


@pytest.fixture
def services() -> CarServices:
    return CarServices(
        verifier=HmacBundleVerifier(), authenticator=PkiTesterAuthenticator(), faults=FaultPlan()
    )


@pytest.fixture
def running(
    host: SimulatorHost, make_store: Callable[[str], CarStore], services: CarServices
) -> RunningCar:
    store = make_store("car")
    car = Car(store, services)
    for _ in range(5):
        address = random_loopback()
        try:
            entity = host.start_car(car, EntityConfig(address, announce_to=None))
            break
        except OSError:
            continue
    else:
        raise RuntimeError("no free loopback address")
    return RunningCar(host, store, services, car, entity, address)
