"""Every bundle attack of the trust layer, sent to the car over UDS: refused, DTC, nothing changes.

The car runs the real ``forecourt.trust`` verifier (UptaneBundleVerifier) with roots pinned from
the in-memory OEM of tests/trust/world.py; bundles travel as a tester sends them: 0x38 file
transfer to the gateway, then RoutineControl FF00.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import udsoncan
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from tuf.api.metadata import TargetFile
from udsoncan import services
from udsoncan.client import Client
from udsoncan.exceptions import NegativeResponseException

from forecourt.trust.model import MAX_BUNDLE_BYTES, NonceFreshness, OfflineFreshness
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import EntityConfig
from forecourt.vehicle.faults import FaultPlan
from forecourt.vehicle.provision import CarSpec, EcuKeys, EcuSpec, provision
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.trust_adapter import (
    PkiTesterAuthenticator,
    UptaneBundleVerifier,
    trust_state_to_dict,
)
from tests.trust.world import IVI_IMAGE, NOW, TBOX_IMAGE, VIN, World, make_world, tamper
from tests.vehicle.conftest import OEM_SECRET, RunningCar, random_loopback
from tests.vehicle.pki import anchors, dealer_of
from tests.vehicle.test_conformance import ExtendedSession, authenticate

SPEC = CarSpec(
    vin=VIN,
    option_codes=("TBOX", "IVI"),
    ecus=(
        EcuSpec(0x1000, "cgw", "CGW0001", "CGW-H1", "1.0.0"),
        EcuSpec(0x1001, "tbox", "TBX0001", "TBX-H1", "1.5.0"),
        EcuSpec(0x1002, "head_unit", "IVI0001", "IVI-H2", "3.0.0"),
        EcuSpec(0x1003, "adas", "ADS0001", "ADS-H1", "1.0.0"),
    ),
)


class RawBytes(udsoncan.DidCodec):  # type: ignore[misc]
    def encode(self, value: bytes) -> bytes:
        return value

    def decode(self, payload: bytes) -> bytes:
        return payload

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


@dataclass
class TrustedCar:
    world: World
    car: Car
    client: Client
    clock: list[datetime]

    def nonce(self) -> str:
        return bytes(self.client.read_data_by_identifier_first(0xFD00)).hex()

    def upload(self, name: str, data: bytes) -> None:
        moop = services.RequestFileTransfer.ModeOfOperation.ReplaceFile
        response = self.client.request_file_transfer(moop, name, filesize=len(data))
        block = response.service_data.max_length - 2
        for counter, offset in enumerate(range(0, len(data), block), start=1):
            self.client.transfer_data(counter & 0xFF, data[offset : offset + block])
        self.client.request_transfer_exit()

    def activate(self, bundle: bytes) -> int | None:
        """Send and apply; None when applied, else the NRC."""
        self.upload("bundle", bundle)
        try:
            self.client.start_routine(0xFF00)
        except NegativeResponseException as exc:
            return int(exc.response.code)
        return None

    def fingerprint(self) -> tuple[Any, ...]:
        s = self.car.state
        return (
            sorted((f.feature_id, f.ecu_address) for f in s.features),
            s.activation_counter,
            sorted((a, n, i.version) for a, e in s.ecus.items() for n, i in e.images.items()),
            s.trust_state,
        )


def ecu_keys(world: World) -> dict[int, EcuKeys]:
    """Fresh signing keys per ECU; the sealing key is the one the world's OEM encrypts to."""
    return {
        e.address: (
            Ed25519PrivateKey.generate(),
            X25519PrivateKey.from_private_bytes(bytes(world.sealing[e.serial_number]))
            if e.serial_number in world.sealing
            else X25519PrivateKey.generate(),
        )
        for e in SPEC.ecus
    }


@pytest.fixture
def trusted(tmp_path: Path) -> Iterator[TrustedCar]:
    world = make_world()
    keys = ecu_keys(world)
    store = provision(
        tmp_path / "car",
        SPEC,
        oem_secret=OEM_SECRET,
        ecu_keys=keys,
        trust_state=trust_state_to_dict(world.car),
        **anchors(world.pki),
    )
    clock = [NOW]
    services_ = CarServices(
        verifier=UptaneBundleVerifier(),
        authenticator=PkiTesterAuthenticator(),
        now=lambda: clock[0],
        faults=FaultPlan(),
    )
    car = Car(store, services_)
    host = SimulatorHost()
    address = random_loopback()
    host.start_car(car, EntityConfig(address, announce_to=None))
    running = RunningCar(host, store, services_, car, host.entities[0], address)
    client = running.client()
    client.config["data_identifiers"][0xFD00] = RawBytes()
    with client:
        client.change_session(ExtendedSession)
        authenticate(client, dealer_of(world.pki, NOW))
        trusted_car = TrustedCar(world, car, client, clock)
        trusted_car.upload("tbox-fw-2.0.bin", TBOX_IMAGE)
        trusted_car.upload("ivi-os-3.1.img", IVI_IMAGE)
        yield trusted_car
    host.close()


def test_valid_bundle_over_uds_applies_and_a_replay_is_refused(trusted: TrustedCar) -> None:
    w = trusted.world
    bundle = w.bundle(w.builder(NonceFreshness(trusted.nonce())))
    assert trusted.activate(bundle) is None
    assert trusted.car.state.activation_counter == 8
    assert trusted.car.state.ecus[0x1001].images["tbox-fw-2.0.bin"].version == 5
    assert [f.feature_id for f in trusted.car.state.features] == ["connected_services"]
    assert trusted.car.state.trust_state["ecus"]["TBX0001"]["release_counter"] == 5
    after = trusted.fingerprint()
    assert trusted.activate(bundle) == 0x24
    assert trusted.fingerprint() == after


def _swap_hash(obj: dict[str, Any]) -> None:
    target = obj["director"]["targets"]["signed"]["targets"]["TBX0001/tbox-fw-2.0.bin"]
    target["hashes"]["sha256"] = "00" * 32


def _strip_signatures(obj: dict[str, Any]) -> None:
    obj["director"]["targets"]["signatures"] = []


def _evil_image(w: World) -> TargetFile:
    real = w.images.targets.targets["tbox-fw-2.0.bin"]
    evil = TargetFile.from_data("tbox-fw-2.0.bin", b"evil firmware", ["sha256"])
    evil.unrecognized_fields = dict(real.unrecognized_fields)
    return evil


def _attack(name: str, w: World, nonce: str, clock: list[datetime]) -> bytes:
    fresh = NonceFreshness(nonce)
    if name == "bad_signature":
        return tamper(w.bundle(w.builder(fresh)), _swap_hash)
    if name == "missing_signature":
        return tamper(w.bundle(w.builder(fresh)), _strip_signatures)
    if name == "release_counter_rollback":
        b = w.builder(fresh)
        b._ecus["TBX0001"].images = [w.images.targets.targets["tbox-fw-1.0.bin"]]
        return w.bundle(b)
    if name == "activation_counter_rollback":
        return w.bundle(w.builder(fresh, counter=7))
    if name == "unissued_nonce":
        return w.bundle(w.builder(NonceFreshness("n-1")))
    if name == "expired_metadata":
        clock[0] = NOW + timedelta(hours=2)
        return w.bundle(w.builder(fresh), expires=NOW + timedelta(hours=1))
    if name == "offline_window_over":
        offline = OfflineFreshness(4, NOW - timedelta(days=2), NOW - timedelta(days=1))
        return w.bundle(w.builder(offline), expires=NOW + timedelta(days=8))
    if name == "mix_and_match":
        b = w.builder(fresh)
        b._ecus["TBX0001"].images = [_evil_image(w)]
        return w.bundle(b)
    if name == "foreign_vin":
        return w.bundle(w.builder(fresh, vin="1HGCM82633A004352"))
    if name == "foreign_ecu":
        b = w.builder(fresh)
        b.add_ecu("TBX9999", "TBX-H1", bytes(w.sealing["TBX0001"].public_key))
        return w.bundle(b)
    if name == "partial_bundle":
        b = w.builder(fresh)
        del w.images.targets.targets["ivi-os-3.1.img"]
        return w.bundle(b)
    if name == "endless_data":
        return b"{" + b" " * MAX_BUNDLE_BYTES + b"}"
    raise AssertionError(name)


ATTACKS: dict[str, int] = {
    "bad_signature": 0x35,
    "missing_signature": 0x35,
    "release_counter_rollback": 0x70,
    "activation_counter_rollback": 0x70,
    "unissued_nonce": 0x24,
    "expired_metadata": 0x22,
    "offline_window_over": 0x22,
    "mix_and_match": 0x70,
    "foreign_vin": 0x31,
    "foreign_ecu": 0x31,
    "partial_bundle": 0x70,
    "endless_data": 0x13,
}


@pytest.mark.parametrize(("attack", "nrc"), ATTACKS.items(), ids=list(ATTACKS))
def test_bundle_attack_over_uds_is_refused_with_dtc_and_state_unchanged(
    trusted: TrustedCar, attack: str, nrc: int
) -> None:
    before = trusted.fingerprint()
    bundle = _attack(attack, trusted.world, trusted.nonce(), trusted.clock)
    assert trusted.activate(bundle) == nrc
    assert trusted.fingerprint() == before
    dtcs = trusted.client.get_dtc_by_status_mask(0xFF).service_data.dtcs
    assert [d.id for d in dtcs] == [0xD10000 | nrc]
