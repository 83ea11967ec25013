"""Conformance: the simulator driven by the independent libraries doipclient and udsoncan."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import struct

import pytest
from doipclient import DoIPClient
from udsoncan import Request, services
from udsoncan.client import Client
from udsoncan.exceptions import NegativeResponseException, TimeoutException

from forecourt.edge.link.transport import FastDoIPClient
from tests.vehicle.conftest import VIN, RunningCar, VariableAscii
from tests.vehicle.pki import DEALER, Dealer

ExtendedSession = services.DiagnosticSessionControl.Session.extendedDiagnosticSession


def nrc_of(excinfo: pytest.ExceptionInfo[NegativeResponseException]) -> int:
    return int(excinfo.value.response.code)


def authenticate(client: Client, dealer: Dealer = DEALER) -> None:
    """0x29 unidirectional: dealer certificate, then proof of ownership over the ECU challenge.

    The proof is bound to the car's VIN and the ECU's serial, read first as the edge does.
    """
    task = services.Authentication.AuthenticationTask
    vin = client.read_data_by_identifier_first(0xF190)
    serial = client.read_data_by_identifier_first(0xF18C)
    first = client.authentication(
        task.verifyCertificateUnidirectional,
        communication_configuration=0,
        certificate_client=dealer.certificate,
        challenge_client=b"",
    )
    challenge = bytes(first.service_data.challenge_server)
    client.authentication(
        task.proofOfOwnership,
        proof_of_ownership_client=dealer.proof(challenge, vin, serial),
        ephemeral_public_key_client=b"",
    )


def test_car_is_discovered_by_vin_and_by_eid(running: RunningCar) -> None:
    by_vin = DoIPClient.get_entity(ecu_ip_address=running.address, vin=VIN)[1]
    assert by_vin.vin == VIN
    assert by_vin.logical_address == 0x1000
    by_eid = DoIPClient.get_entity(ecu_ip_address=running.address, eid=running.car.eid)[1]
    assert by_eid.vin == VIN


def test_vin_is_read_after_routing_activation(running: RunningCar) -> None:
    with running.client() as client:
        assert client.read_data_by_identifier_first(0xF190) == VIN


def test_routing_activation_from_a_non_tester_address_is_refused(running: RunningCar) -> None:
    with pytest.raises(ConnectionRefusedError):
        DoIPClient(running.address, 0x1000, client_logical_address=0x0100)


def test_routing_activation_refusal_can_be_injected(running: RunningCar) -> None:
    running.services.faults.refuse_routing_activation = True
    with pytest.raises(ConnectionRefusedError):
        DoIPClient(running.address, 0x1000)


def test_entity_status_alive_check_and_power_mode_answer(running: RunningCar) -> None:
    doip = DoIPClient(running.address, 0x1000)
    try:
        status = doip.request_entity_status()
        assert status.max_data_size >= 1024 * 1024
        assert status.node_type == 0
        assert doip.request_alive_check().source_address == 0x0E00
        assert doip.request_diagnostic_power_mode().diagnostic_power_mode == 0x01
    finally:
        doip.close()


def test_unknown_target_address_gets_a_diagnostic_nack(running: RunningCar) -> None:
    doip = DoIPClient(running.address, 0x1000)
    try:
        with pytest.raises(OSError, match="negative acknowledge code: 3"):
            doip.send_diagnostic_to_address(0x1F00, b"\x22\xf1\x90")
    finally:
        doip.close()


def test_adas_is_routed_only_when_fitted(running: RunningCar) -> None:
    with running.client(ecu=0x1003) as client:
        assert client.read_data_by_identifier_first(0xF18C) == "ADA0000000004"


@pytest.mark.parametrize(
    ("frame", "nack"),
    [
        (b"\x02\xfc\x00\x01\x00\x00\x00\x00", 0x00),  # inverse version wrong
        (b"\x02\xfd\x12\x34\x00\x00\x00\x00", 0x01),  # unknown payload type
        (b"\x02\xfd\x80\x01\x7f\x00\x00\x00", 0x02),  # 2 GB diagnostic message
        (b"\x02\xfd\x00\x05\x00\x00\x00\x02\x0e\x00", 0x04),  # routing activation too short
    ],
)
def test_malformed_headers_get_a_generic_nack(running: RunningCar, frame: bytes, nack: int) -> None:
    with socket.create_connection((running.address, 13400), timeout=5) as raw:
        raw.sendall(frame)
        reply = raw.recv(64)
    assert reply[2:4] == b"\x00\x00"  # generic header negative acknowledge
    assert reply[8] == nack


def test_unknown_did_is_request_out_of_range(running: RunningCar) -> None:
    with running.client() as client, pytest.raises(NegativeResponseException) as exc:
        client.config["data_identifiers"][0xABCD] = VariableAscii()
        client.read_data_by_identifier_first(0xABCD)
    assert nrc_of(exc) == 0x31


def test_unsupported_service_is_service_not_supported(running: RunningCar) -> None:
    with running.client() as client, pytest.raises(NegativeResponseException) as exc:
        client.control_dtc_setting(services.ControlDTCSetting.SettingType.off)
    assert nrc_of(exc) == 0x11


def test_protected_write_without_authentication_is_security_access_denied(
    running: RunningCar,
) -> None:
    with running.client() as client:
        client.change_session(ExtendedSession)
        with pytest.raises(NegativeResponseException) as exc:
            client.write_data_by_identifier(0xF198, "SHOP-42")
    assert nrc_of(exc) == 0x33


def test_protected_write_after_0x29_authentication_is_stored(running: RunningCar) -> None:
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        client.write_data_by_identifier(0xF198, "SHOP-42")
        assert client.read_data_by_identifier_first(0xF198) == "SHOP-42"
    running.restart()
    with running.client() as client:
        assert client.read_data_by_identifier_first(0xF198) == "SHOP-42"


def test_forged_proof_of_ownership_is_refused(running: RunningCar) -> None:
    task = services.Authentication.AuthenticationTask
    with running.client() as client:
        client.authentication(
            task.verifyCertificateUnidirectional,
            communication_configuration=0,
            certificate_client=DEALER.certificate,
            challenge_client=b"",
        )
        with pytest.raises(NegativeResponseException) as exc:
            client.authentication(
                task.proofOfOwnership,
                proof_of_ownership_client=DEALER.proof(bytes(32), VIN, "CGW0000000001"),
                ephemeral_public_key_client=b"",
            )
    assert nrc_of(exc) == 0x58


def test_transfer_data_without_a_request_is_a_sequence_error(running: RunningCar) -> None:
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        with pytest.raises(NegativeResponseException) as exc:
            client.transfer_data(1, b"data")
    assert nrc_of(exc) == 0x24


def test_wrong_block_counter_is_refused_with_0x73(running: RunningCar) -> None:
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        client.request_file_transfer(
            services.RequestFileTransfer.ModeOfOperation.AddFile, "pkg/a.bin", filesize=16
        )
        client.transfer_data(1, b"x" * 8)
        with pytest.raises(NegativeResponseException) as exc:
            client.transfer_data(3, b"x" * 8)
    assert nrc_of(exc) == 0x73


def test_repeated_bad_keys_lock_out_with_0x36_then_0x37(running: RunningCar) -> None:
    codes = []
    with running.client() as client:
        client.change_session(ExtendedSession)
        client.config["security_algo"] = lambda level, seed, params=None: b"\x00" * 16
        for _ in range(4):
            with pytest.raises(NegativeResponseException) as exc:
                client.unlock_security_access(1)
            codes.append(nrc_of(exc))
    assert codes == [0x35, 0x35, 0x36, 0x37]


def test_right_key_unlocks_security_access(running: RunningCar) -> None:
    with running.client() as client:
        client.change_session(ExtendedSession)
        client.unlock_security_access(1)
        client.write_data_by_identifier(0xF198, "SA-OK")


def test_interrupted_transfer_resumes_and_received_hash_matches(running: RunningCar) -> None:
    image = os.urandom(300_000)
    block = 16 * 1024
    drop_after = random.SystemRandom().randrange(1, len(image) // block)
    running.services.faults.drop_after_blocks = drop_after
    moop = services.RequestFileTransfer.ModeOfOperation
    sent = 0
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        client.request_file_transfer(moop.AddFile, "pkg/image.bin", filesize=len(image))
        with pytest.raises((OSError, TimeoutException)):  # the link drops mid-transfer
            for counter in range(1, 1000):
                client.transfer_data(counter & 0xFF, image[sent : sent + block])
                sent += block
    assert sent == drop_after * block
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        resumed = client.request_file_transfer(
            moop.ResumeFile, "pkg/image.bin", filesize=len(image)
        )
        position = resumed.service_data.fileposition
        assert position == sent
        counter = 1
        while position < len(image):
            client.transfer_data(counter & 0xFF, image[position : position + block])
            position += block
            counter += 1
        exit_response = client.request_transfer_exit()
    assert exit_response.service_data.parameter_records == hashlib.sha256(image).digest()


def test_ecu_reset_drops_the_session(running: RunningCar) -> None:
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        client.ecu_reset(services.ECUReset.ResetType.hardReset)
        with pytest.raises(NegativeResponseException) as exc:
            client.write_data_by_identifier(0xF198, "AFTER")
    assert nrc_of(exc) == 0x33


def test_tester_present_is_answered(running: RunningCar) -> None:
    with running.client() as client:
        client.tester_present()
        response = client.send_request(Request(services.TesterPresent, subfunction=0))
        assert response.positive


def test_routine_ff01_reports_unmet_preconditions(running: RunningCar) -> None:
    running.host.call(lambda: setattr(running.car.preconditions, "stationary", False))
    with running.client() as client:
        response = client.start_routine(0xFF01)
    assert response.service_data.routine_status_record == b"\x04"
    assert struct.unpack(">BHB", running.car.preconditions.encode())[2] == 0


def test_large_blocks_are_accepted_up_to_the_advertised_maximum(running: RunningCar) -> None:
    moop = services.RequestFileTransfer.ModeOfOperation
    with running.client() as client:
        client.change_session(ExtendedSession)
        authenticate(client)
        response = client.request_file_transfer(moop.AddFile, "big.bin", filesize=2 << 20)
        per_block = response.service_data.max_length - 2
        assert per_block >= 1 << 20
        client.transfer_data(1, bytes(per_block))
        client.transfer_data(2, bytes((2 << 20) - per_block))
        client.request_transfer_exit()


def test_fast_client_subclass_still_speaks_plain_doip(running: RunningCar) -> None:
    doip = FastDoIPClient(running.address, 0x1000)
    try:
        doip.send_diagnostic(b"\x22\xf1\x90")
        assert doip.receive_diagnostic(timeout=5)[3:] == VIN.encode()
    finally:
        doip.close()
