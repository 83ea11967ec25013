"""The car's use of the trust layer beyond bundles: 0x29 refusals, nonces, secrets, FD04."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_public_key

from forecourt.trust import NonceFreshness, verify_manifest
from forecourt.trust.errors import ManifestCounterReused, ManifestSignatureInvalid
from forecourt.trust.testing import IVI_IMAGE, NOW, TBOX_IMAGE, World, make_world
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.provision import provision
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import (
    PkiTesterAuthenticator,
    UptaneBundleVerifier,
    trust_state_to_dict,
)
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc
from tests.vehicle.conftest import OEM_SECRET, RunningCar
from tests.vehicle.pki import Dealer, anchors, dealer_of
from tests.vehicle.test_trust_wiring import SPEC, ecu_keys


# -- UDS 0x29 on the OEM PKI ------------------------------------------------------------------
def _exchange(car: Car, dealer: Dealer, *, serial_for_proof: str | None = None) -> bytes:
    """verifyCertificateUnidirectional then proofOfOwnership on the gateway; the last answer."""
    ecu, sent = car.ecus[0x1000], []

    async def respond(data: bytes) -> None:
        sent.append(data)

    cert = dealer.certificate
    asyncio.run(
        ecu.handle(b"\x29\x01\x00" + len(cert).to_bytes(2, "big") + cert + b"\0\0", respond)
    )
    if sent[-1][0] == 0x7F:
        return sent[-1]
    challenge = sent[-1][5:37]
    proof = dealer.proof(challenge, car.vin, serial_for_proof or "CGW0001")
    asyncio.run(ecu.handle(b"\x29\x03" + len(proof).to_bytes(2, "big") + proof + b"\0\0", respond))
    return sent[-1]


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def pki_car(tmp_path: Path, world: World) -> Callable[..., Car]:
    def make(clock: datetime = NOW, crl: bool = False, name: str = "car") -> Car:
        store = CarStore(tmp_path / name)
        if not store.exists():
            extra = {"crl_pem": world.pki.crl.public_bytes(Encoding.PEM).decode()} if crl else {}
            provision(store.directory, SPEC, oem_secret=OEM_SECRET, **anchors(world.pki), **extra)
        return Car(store, CarServices(authenticator=PkiTesterAuthenticator(), now=lambda: clock))

    return make


def test_dealer_certificate_of_the_pinned_oem_authenticates(
    pki_car: Callable[..., Car], world: World
) -> None:
    assert _exchange(pki_car(), dealer_of(world.pki, NOW)) == b"\x69\x03\x12\x00\x00"


def test_expired_dealer_certificate_is_refused_at_the_cars_time(
    pki_car: Callable[..., Car], world: World
) -> None:
    car = pki_car(clock=NOW + timedelta(days=400))
    assert _exchange(car, dealer_of(world.pki, NOW)) == b"\x7f\x29\x50"


def test_revoked_dealer_is_refused_when_the_car_holds_a_crl(
    pki_car: Callable[..., Car], world: World
) -> None:
    dealer = dealer_of(world.pki, NOW)
    world.pki.revoke(x509.load_der_x509_certificate(dealer.certificate).serial_number, NOW)
    world.pki.publish_crl(NOW)
    assert _exchange(pki_car(crl=True), dealer) == b"\x7f\x29\x57"


def test_proof_made_for_another_ecu_is_refused(pki_car: Callable[..., Car], world: World) -> None:
    answer = _exchange(pki_car(), dealer_of(world.pki, NOW), serial_for_proof="TBX0001")
    assert answer == b"\x7f\x29\x58"


def test_car_without_a_pinned_oem_root_refuses_every_dealer(tmp_path: Path, world: World) -> None:
    store = provision(tmp_path / "bare", SPEC, oem_secret=OEM_SECRET)
    car = Car(store, CarServices(authenticator=PkiTesterAuthenticator(), now=lambda: NOW))
    assert _exchange(car, dealer_of(world.pki, NOW)) == b"\x7f\x29\x52"


# -- nonces and sealed secrets ----------------------------------------------------------------
@pytest.fixture
def uptane_car(tmp_path: Path, world: World) -> Iterator[Callable[[], Car]]:
    keys = ecu_keys(world)
    store = provision(
        tmp_path / "car",
        SPEC,
        oem_secret=OEM_SECRET,
        ecu_keys=keys,
        trust_state=trust_state_to_dict(world.car),
    )
    for name, data in (("tbox-fw-2.0.bin", TBOX_IMAGE), ("ivi-os-3.1.img", IVI_IMAGE)):
        (store.files_dir(0x1000) / name).write_bytes(data)

    def boot() -> Car:
        return Car(store, CarServices(verifier=UptaneBundleVerifier(), now=lambda: NOW))

    yield boot


def test_restarted_car_accepts_the_nonce_it_issued_once_and_never_twice(
    uptane_car: Callable[[], Car], world: World
) -> None:
    nonce = uptane_car().issue_nonce().hex()
    bundle = world.bundle(world.builder(NonceFreshness(nonce)))
    assert uptane_car().verify_and_apply(bundle) == 8
    with pytest.raises(NegativeResponse) as replay:
        uptane_car().verify_and_apply(bundle)
    assert replay.value.nrc == Nrc.REQUEST_SEQUENCE_ERROR


def test_secrets_are_opened_into_the_ecus_secure_storage_and_never_logged(
    uptane_car: Callable[[], Car], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    car = uptane_car()
    bundle = world.bundle(world.builder(NonceFreshness(car.issue_nonce().hex())))
    car.verify_and_apply(bundle)
    restarted = uptane_car()
    assert restarted.secure_storage(0x1001) == {"subscription_key": b"sk-connected-0001"}
    rel = restarted.state.ecus[0x1001].secure_storage
    assert rel is not None
    assert stat.S_IMODE((restarted.store.directory / rel).stat().st_mode) == 0o600
    assert "sk-connected" not in capsys.readouterr().out
    assert b"sk-connected" not in restarted.store.state_path.read_bytes()


def test_secret_sealed_to_another_ecu_fails_the_whole_apply_with_a_dtc(
    uptane_car: Callable[[], Car], world: World
) -> None:
    car = uptane_car()
    builder = world.builder(NonceFreshness(car.issue_nonce().hex()))
    order = builder._ecus["TBX0001"]
    order.sealing_key = bytes(world.sealing["IVI0001"].public_key)
    before = (car.state.activation_counter, car.state.features, car.state.trust_state)
    with pytest.raises(NegativeResponse) as failed:
        car.verify_and_apply(world.bundle(builder))
    assert failed.value.nrc == Nrc.GENERAL_PROGRAMMING_FAILURE
    after = uptane_car()
    assert (after.state.activation_counter, after.state.features) == before[:2]
    assert after.state.trust_state == before[2]
    assert after.state.ecus[0x1002].images == {}
    assert after.secure_storage(0x1001) == {}
    assert [d.code for d in after.state.dtcs] == [0xD20000 | Nrc.GENERAL_PROGRAMMING_FAILURE]


# -- FD04 -------------------------------------------------------------------------------------
def _inventory(car: Car) -> dict[str, object]:
    return {
        e.serial_number: load_pem_public_key(e.signing_public_key_pem.encode())
        for e in car.state.ecus.values()
    }


def test_fd04_manifest_verifies_and_its_counter_rises_across_reads_and_restarts(
    running: RunningCar,
) -> None:
    inventory = _inventory(running.car)
    first = verify_manifest(running.car.version_report(0x1000), inventory, {})  # type: ignore[arg-type]
    running.restart()
    second = verify_manifest(
        running.host.call(lambda: running.car.version_report(0x1000)),
        inventory,  # type: ignore[arg-type]
        first.counters,
    )
    assert all(second.counters[s] > first.counters[s] for s in first.counters)
    with pytest.raises(ManifestCounterReused):
        verify_manifest(
            running.car.version_report(0x1000), inventory, {s: 10**6 for s in inventory}
        )  # type: ignore[arg-type]


def test_each_report_is_signed_by_its_own_ecu_not_the_gateway(running: RunningCar) -> None:
    car = running.car
    gateway_key = load_pem_public_key(car.state.ecus[0x1000].signing_public_key_pem.encode())
    everyone_is_gateway = dict.fromkeys(_inventory(car), gateway_key)
    with pytest.raises(ManifestSignatureInvalid):
        verify_manifest(car.version_report(0x1000), everyone_is_gateway, {})  # type: ignore[arg-type]
    own = json.loads(car.version_report(0x1002))
    assert own["signed"]["ecu_serial"] == car.state.ecus[0x1002].serial_number
