"""The DoIP link against the real simulated car: what only the network path can show."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from forecourt.edge.link import (
    ApplyRefused,
    DoipVehicleLink,
    EcuNegativeResponse,
    LinkConfig,
    RoutingActivationRefused,
    TransferInterrupted,
    VehicleUnreachable,
)
from forecourt.vehicle.provision import CarSpec, EcuSpec
from forecourt.vehicle.runtime import SimulatorHost
from tests.edge.link.conftest import VIN, SimulatedCar, dealer, start_car
from tests.vehicle.doubles import make_bundle

IMAGE_SIZE = 5 * 1024 * 1024
BLOCK = 256 * 1024


def test_discovery_by_vin_finds_the_one_car_among_several_addresses(
    host: SimulatorHost, tmp_path: Path
) -> None:
    other_vin = "WFCRT0LINKB000099"
    other = start_car(
        host,
        tmp_path / "other",
        CarSpec(other_vin, (), (EcuSpec(0x1000, "cgw", "CGW9", "CGW-3-110", "1.0.0"),)),
    )
    target = start_car(host, tmp_path / "target")
    with DoipVehicleLink(LinkConfig(discovery_timeout=1.0)) as link:
        found = link.discover(vin=VIN, addresses=[other.address, target.address])
        assert (found.vin, found.address) == (VIN, target.address)
        assert found.eid == target.car.eid and found.gid == target.car.gid
        assert link.read_identity().vin == VIN


def test_identity_of_every_ecu_matches_what_the_factory_provisioned(
    link: DoipVehicleLink, sim: SimulatedCar
) -> None:
    link.authenticate(0x1000, dealer())
    identity = link.read_identity()
    state = sim.car.state
    assert [e.address for e in identity.ecus] == sorted(state.ecus)  # ADAS not fitted: absent
    for ecu in identity.ecus:
        record = state.ecus[ecu.address]
        assert (ecu.serial_number, ecu.hardware_number, ecu.software_version) == (
            record.serial_number,
            record.hardware_number,
            record.software_version,
        )
        assert ecu.supplier_software_version == record.supplier_software_version
        assert ecu.spare_part_number == record.spare_part_number
        assert ecu.signing_public_key_pem == record.signing_public_key_pem
        assert ecu.sealing_public_key.hex() == record.sealing_public_key
    assert len(identity.activation_nonce) == 16
    assert identity.preconditions.stationary and identity.preconditions.power_mode == 2


def test_each_identity_read_gets_a_fresh_nonce(link: DoipVehicleLink) -> None:
    link.authenticate(0x1000, dealer())
    assert link.read_identity().activation_nonce != link.read_identity().activation_nonce


def test_the_car_gives_no_nonce_before_the_gateway_is_authenticated(
    link: DoipVehicleLink, sim: SimulatedCar
) -> None:
    assert link.read_identity().activation_nonce == b""
    with pytest.raises(EcuNegativeResponse) as refused:
        link.read_nonce()
    assert refused.value.nrc == 0x31  # FD00 is not offered in the default session
    assert sim.car.state.issued_nonces == []
    link.authenticate(0x1000, dealer())
    nonce = link.read_nonce()
    assert sim.car.state.issued_nonces == [nonce.hex()]


def test_5_mb_image_cut_mid_way_resumes_without_resending_confirmed_bytes(
    host: SimulatorHost, tmp_path: Path
) -> None:
    sim = start_car(host, tmp_path / "car")
    image = os.urandom(IMAGE_SIZE)
    sim.faults.drop_after_blocks = 9  # the car drops the connection on the 10th TransferData
    confirmed: list[int] = []
    with DoipVehicleLink(LinkConfig(max_block_data=BLOCK)) as link:
        link.discover(vin=VIN, addresses=[sim.address])
        link.authenticate(0x1000, dealer())
        receipt = link.transfer(
            0x1000, "maps-eu.img", image, lambda done, total: confirmed.append(done)
        )
    assert receipt.block_size == BLOCK
    assert receipt.resumed_from == (9 * BLOCK,)
    assert receipt.bytes_sent == IMAGE_SIZE + BLOCK  # the one block lost in the cut, no more
    assert confirmed == sorted(confirmed) and confirmed[-1] == IMAGE_SIZE
    stored = host.call(lambda: sim.car.ecus[0x1000].receiver.completed("maps-eu.img"))
    assert stored is not None and stored.sha256 == hashlib.sha256(image).hexdigest()


def test_transfer_cut_more_often_than_allowed_reports_the_confirmed_position(
    host: SimulatorHost, tmp_path: Path
) -> None:
    sim = start_car(host, tmp_path / "car")
    sim.faults.one_shot = False
    sim.faults.drop_after_blocks = 3
    with DoipVehicleLink(LinkConfig(max_block_data=BLOCK, max_resumes=1)) as link:
        link.discover(vin=VIN, addresses=[sim.address])
        link.authenticate(0x1000, dealer())
        with pytest.raises(TransferInterrupted) as error:
            link.transfer(0x1000, "big.img", os.urandom(10 * BLOCK))
    assert (error.value.position, error.value.size) == (6 * BLOCK, 10 * BLOCK)
    assert (error.value.ecu, error.value.name) == (0x1000, "big.img")


def test_a_later_transfer_resumes_what_an_earlier_link_left_unfinished(
    host: SimulatorHost, tmp_path: Path
) -> None:
    sim = start_car(host, tmp_path / "car")
    image = os.urandom(8 * BLOCK)
    sim.faults.drop_after_blocks = 5
    config = LinkConfig(max_block_data=BLOCK, max_resumes=0)
    with DoipVehicleLink(config) as link:
        link.discover(vin=VIN, addresses=[sim.address])
        link.authenticate(0x1000, dealer())
        with pytest.raises(TransferInterrupted):
            link.transfer(0x1000, "pkg.img", image)
    with DoipVehicleLink(config) as link:  # e.g. the edge restarted
        link.discover(vin=VIN, addresses=[sim.address])
        link.authenticate(0x1000, dealer())
        receipt = link.transfer(0x1000, "pkg.img", image)
    assert receipt.resumed_from == ()  # a fresh link: the resume happened at the first request
    assert receipt.bytes_sent == 3 * BLOCK


def test_transfer_from_a_file_path_sends_the_file(link: DoipVehicleLink, tmp_path: Path) -> None:
    path = tmp_path / "pkg.bin"
    path.write_bytes(os.urandom(300_000))
    link.authenticate(0x1001, dealer())
    receipt = link.transfer(0x1001, "pkg.bin", path)
    assert receipt.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_apply_answers_pending_then_reports_each_ecu_and_the_new_state(
    link: DoipVehicleLink, sim: SimulatedCar
) -> None:
    bundle = make_bundle(
        VIN, 1, features=[("NAV_PRO", 0x1002, None), ("REMOTE_PARK", 0x1001, None)]
    )
    link.authenticate(0x1000, dealer())
    link.transfer(0x1000, "bundle", bundle)
    outcome = link.apply()
    assert outcome.activation_counter == 1
    assert dict(outcome.ecu_results) == {0x1001: 0, 0x1002: 0}
    identity = link.read_identity()
    assert {f.feature for f in identity.feature_status if f.active} == {"NAV_PRO", "REMOTE_PARK"}
    own_report = link.read_report(0x1002).document["signed"]  # the ECU's own signed report
    assert own_report["active_features"][0]["feature"] == "NAV_PRO"


def test_flash_failure_surfaces_0x72_with_the_failing_ecu_in_the_results(
    link: DoipVehicleLink, sim: SimulatedCar
) -> None:
    sim.faults.fail_flash_ecu = 0x1002
    link.authenticate(0x1000, dealer())
    link.transfer(0x1000, "bundle", make_bundle(VIN, 1, features=[("NAV_PRO", 0x1002, None)]))
    with pytest.raises(ApplyRefused) as error:
        link.apply()
    assert (error.value.nrc, error.value.nrc_name) == (0x72, "GeneralProgrammingFailure")
    assert error.value.ecu_results == {0x1002: 0x72}
    assert [d.code for d in link.read_dtcs(0x1000)] == [0xD20072]


def test_0x27_keys_from_the_oem_backend_unlock_the_ecu(link: DoipVehicleLink) -> None:
    """The simulator offers 0x29 on every ECU, so the fallback the link takes on NRC 0x11/0x7F
    from 0x29 is driven directly: extended session, then 0x27 with the OEM backend's key."""
    link._call(0x1001, 0x10, lambda client: client.change_session(0x03))
    link._security_access(0x1001, dealer())
    receipt = link.transfer(0x1001, "after-0x27.bin", b"unlocked")
    assert receipt.size == 8


def test_refused_routing_activation_is_typed(link: DoipVehicleLink, sim: SimulatedCar) -> None:
    sim.faults.refuse_routing_activation = True
    with pytest.raises(RoutingActivationRefused) as error:
        link.read_identity()
    assert error.value.tester_address == 0x0E80


def test_a_car_that_went_away_is_unreachable(
    link: DoipVehicleLink, sim: SimulatedCar, host: SimulatorHost
) -> None:
    link.read_identity()
    host.stop_car(sim.entity)
    with pytest.raises(VehicleUnreachable) as error:
        link.read_identity()
    assert error.value.address == sim.address


def test_a_file_the_car_already_holds_whole_is_not_sent_again_but_a_different_one_is(
    link: DoipVehicleLink,
) -> None:
    link.authenticate(0x1000, dealer())
    image = os.urandom(6 * BLOCK)
    first = link.transfer(0x1000, "whole.img", image)
    assert first.bytes_sent == len(image)
    again = link.transfer(0x1000, "whole.img", image)  # e.g. a resume after a crash past 0x37
    assert (again.bytes_sent, again.sha256) == (0, first.sha256)
    other = os.urandom(len(image))  # same name and size, other content: sent in full
    replaced = link.transfer(0x1000, "whole.img", other)
    assert replaced.bytes_sent == len(other)
    assert replaced.sha256 == hashlib.sha256(other).hexdigest()
