"""The DoIP link (against the simulated car) and the in-memory link honour one contract.

Each case runs twice: ``doip`` drives the real simulator over loopback with doipclient/udsoncan,
``memory`` the in-memory link the workflow's unit tests use. A behaviour listed here is one the
workflow may rely on whichever link it is given.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from forecourt.edge.link import (
    ApplyRefused,
    DoipVehicleLink,
    EcuIdentity,
    EcuNegativeResponse,
    InMemoryVehicleLink,
    LinkConfig,
    LinkNotBound,
    MemoryEcu,
    MemoryVehicle,
    VehicleLink,
    VehicleNotFound,
)
from forecourt.vehicle.runtime import SimulatorHost
from tests.edge.link.conftest import SERIALS, VIN, dealer, impostor, start_car
from tests.vehicle.doubles import BUNDLE_KEY, DEALER_KEY, make_bundle

BLOCK = 64 * 1024


def valid_bundle(counter: int = 1) -> bytes:
    return make_bundle(VIN, counter, features=[("NAV_PRO", 0x1002, None)])


def forged_bundle() -> bytes:
    return make_bundle(VIN, 1, features=[("NAV_PRO", 0x1002, None)], key=b"attacker")


@dataclass
class World:
    link: VehicleLink
    address: str
    cut_after_blocks: Callable[[int], None]


def memory_world() -> World:
    def authenticator(certificate: bytes, challenge: bytes, proof: bytes) -> int | None:
        expected = hmac.new(DEALER_KEY, challenge, "sha256").digest()
        return None if hmac.compare_digest(expected, proof) else 0x58

    def verify_bundle(bundle: bytes) -> int | None:
        return None if bundle != forged_bundle() else 0x33

    ecus = {
        address: MemoryEcu(
            EcuIdentity(address, serial, "HW", "1.0.0", "1.0.0", "HW-SP", "PEM", b"\x01", "")
        )
        for address, serial in SERIALS.items()
    }
    vehicle = MemoryVehicle(
        VIN,
        "127.0.0.42",
        ecus,
        authenticator=authenticator,
        verify_bundle=verify_bundle,
        block_size=BLOCK,
    )
    assert BUNDLE_KEY  # the simulated car checks the same HMAC; memory compares bytes

    def cut(blocks: int) -> None:
        vehicle.cut_after_blocks = blocks

    return World(InMemoryVehicleLink([vehicle]), vehicle.address, cut)


@pytest.fixture(params=["doip", "memory"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "memory":
        yield memory_world()
        return
    host = SimulatorHost()
    try:
        sim = start_car(host, tmp_path / "car")

        def cut(blocks: int) -> None:
            sim.faults.drop_after_blocks = blocks

        with DoipVehicleLink(LinkConfig(discovery_timeout=0.3, max_block_data=BLOCK)) as link:
            yield World(link, sim.address, cut)
    finally:
        host.close()


def test_discovery_by_vin_binds_the_link_to_that_car(world: World) -> None:
    found = world.link.discover(vin=VIN, addresses=[world.address])
    assert (found.vin, found.address, found.logical_address) == (VIN, world.address, 0x1000)


def test_discovery_of_an_absent_vin_raises_vehicle_not_found(world: World) -> None:
    with pytest.raises(VehicleNotFound) as error:
        world.link.discover(vin="WFCRT0LINKA000078", addresses=[world.address])
    assert error.value.vin == "WFCRT0LINKA000078"


def test_operations_before_discovery_raise_link_not_bound(world: World) -> None:
    with pytest.raises(LinkNotBound):
        world.link.read_identity()


def test_identity_lists_every_fitted_ecu_with_its_serial(world: World) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    identity = world.link.read_identity()
    assert identity.vin == VIN
    assert {e.address: e.serial_number for e in identity.ecus} == SERIALS
    assert identity.activation_counter == 0


def test_transfer_before_authentication_is_refused_in_the_default_session(
    world: World,
) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    with pytest.raises(EcuNegativeResponse) as error:
        world.link.transfer(0x1000, "bundle", b"data")
    assert (error.value.ecu, error.value.service, error.value.nrc) == (0x1000, 0x38, 0x7F)
    assert error.value.nrc_name == "ServiceNotSupportedInActiveSession"


def test_transfer_after_a_refused_authentication_is_security_access_denied(
    world: World,
) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    with pytest.raises(EcuNegativeResponse):
        world.link.authenticate(0x1000, impostor())
    with pytest.raises(EcuNegativeResponse) as error:
        world.link.transfer(0x1000, "bundle", b"data")
    assert error.value.nrc == 0x33


def test_proof_without_the_dealer_key_is_refused_with_0x58(world: World) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    with pytest.raises(EcuNegativeResponse) as error:
        world.link.authenticate(0x1000, impostor())
    assert (error.value.service, error.value.nrc) == (0x29, 0x58)


def test_authenticated_transfer_reports_the_digest_and_sends_each_byte_once(
    world: World,
) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    world.link.authenticate(0x1000, dealer())
    data = os.urandom(3 * BLOCK + 17)
    seen: list[int] = []
    receipt = world.link.transfer(0x1000, "pkg.bin", data, lambda done, total: seen.append(done))
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert (receipt.size, receipt.bytes_sent, receipt.resumed_from) == (len(data), len(data), ())
    assert seen[-1] == len(data)


def test_cut_transfer_resumes_from_the_confirmed_position_without_resending_it(
    world: World,
) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    world.link.authenticate(0x1000, dealer())
    data = os.urandom(10 * BLOCK)
    world.cut_after_blocks(4)
    receipt = world.link.transfer(0x1000, "pkg.bin", data)
    assert receipt.resumed_from == (4 * BLOCK,)
    assert receipt.bytes_sent == len(data) + BLOCK  # only the block lost in the cut goes twice
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()


def test_apply_of_a_valid_bundle_raises_the_counter_in_the_report(world: World) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    world.link.authenticate(0x1000, dealer())
    world.link.transfer(0x1000, "bundle", valid_bundle())
    outcome = world.link.apply()
    assert outcome.activation_counter == 1
    assert outcome.ecu_results and set(outcome.ecu_results.values()) == {0}
    status = world.link.read_status().document
    assert (status["vin"], status["activation_counter"]) == (VIN, 1)
    manifest = world.link.read_report().document["signed"]
    assert manifest["vin"] == VIN
    reports = manifest["ecu_version_reports"].values()
    assert {r["signed"]["activation_counter"] for r in reports} == {1}


def test_forged_bundle_is_refused_with_its_nrc_a_dtc_and_no_change(world: World) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    world.link.authenticate(0x1000, dealer())
    world.link.transfer(0x1000, "bundle", forged_bundle())
    with pytest.raises(ApplyRefused) as error:
        world.link.apply()
    assert (error.value.service, error.value.nrc) == (0x31, 0x33)
    assert [d.code for d in world.link.read_dtcs(0x1000)] == [0xD10033]
    assert world.link.read_status().document["activation_counter"] == 0


def test_apply_without_a_received_bundle_is_a_sequence_error(world: World) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    world.link.authenticate(0x1000, dealer())
    with pytest.raises(ApplyRefused) as error:
        world.link.apply(bundle_name="never-sent")
    assert error.value.nrc == 0x24


def test_ecu_reset_ends_the_session_and_its_authentication(world: World) -> None:
    world.link.discover(vin=VIN, addresses=[world.address])
    world.link.authenticate(0x1000, dealer())
    world.link.ecu_reset(0x1000)
    with pytest.raises(EcuNegativeResponse) as error:
        world.link.transfer(0x1000, "bundle", b"data")
    assert error.value.nrc == 0x7F


def test_memory_link_falls_back_to_seed_key_where_0x29_is_not_offered() -> None:
    world = memory_world()
    assert isinstance(world.link, InMemoryVehicleLink)
    world.link.vehicles[0].offers_certificate_authentication = False
    world.link.discover(vin=VIN)
    assert world.link.authenticate(0x1001, dealer()).method == "seed_key"
    assert world.link.transfer(0x1001, "f", b"x").size == 1
