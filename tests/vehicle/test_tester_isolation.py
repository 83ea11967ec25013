"""UDS state belongs to one tester connection (ISO 13400-2 socket + tester address), not the ECU.

A dealer's 0x29 authentication must not be usable by another tester on the network, neither
after the dealer disconnects nor while the dealer is still connected, and another tester must not
be able to consume the dealer's pending challenge or failed-attempt count.
"""

from __future__ import annotations

import pytest
from udsoncan import services
from udsoncan.exceptions import NegativeResponseException

from tests.vehicle.conftest import VIN, RunningCar
from tests.vehicle.pki import DEALER
from tests.vehicle.test_conformance import ExtendedSession, authenticate, nrc_of

DEALER_TESTER, OTHER_TESTER = 0x0E80, 0x0E99
TASK = services.Authentication.AuthenticationTask


def test_authentication_ends_when_the_dealers_connection_closes(running: RunningCar) -> None:
    with running.client(tester=DEALER_TESTER) as dealer:
        dealer.change_session(ExtendedSession)
        authenticate(dealer)
    with running.client(tester=OTHER_TESTER) as other:
        with pytest.raises(NegativeResponseException) as default_session:
            other.write_data_by_identifier(0xF198, "EVIL")
        other.change_session(ExtendedSession)
        with pytest.raises(NegativeResponseException) as extended_session:
            other.write_data_by_identifier(0xF198, "EVIL")
    assert nrc_of(default_session) == 0x33
    assert nrc_of(extended_session) == 0x33
    assert running.car.state.ecus[0x1000].repair_shop_code != "EVIL"


def test_a_second_tester_cannot_use_a_connected_dealers_authentication(
    running: RunningCar,
) -> None:
    with (
        running.client(tester=DEALER_TESTER) as dealer,
        running.client(tester=OTHER_TESTER) as other,
    ):
        dealer.change_session(ExtendedSession)
        authenticate(dealer)
        other.change_session(ExtendedSession)
        with pytest.raises(NegativeResponseException) as exc:
            other.write_data_by_identifier(0xF198, "EVIL")
        dealer.write_data_by_identifier(0xF198, "SHOP-42")
    assert nrc_of(exc) == 0x33
    assert running.car.state.ecus[0x1000].repair_shop_code == "SHOP-42"


def test_reconnecting_does_not_keep_the_session(running: RunningCar) -> None:
    with running.client(tester=DEALER_TESTER) as dealer:
        dealer.change_session(ExtendedSession)
        authenticate(dealer)
    with (
        running.client(tester=DEALER_TESTER) as dealer,
        pytest.raises(NegativeResponseException) as exc,
    ):
        dealer.write_data_by_identifier(0xF198, "AGAIN")
    assert nrc_of(exc) == 0x33


def test_another_tester_cannot_burn_the_dealers_challenge_or_attempts(
    running: RunningCar,
) -> None:
    with (
        running.client(tester=DEALER_TESTER) as dealer,
        running.client(tester=OTHER_TESTER) as other,
    ):
        dealer.change_session(ExtendedSession)
        serial = dealer.read_data_by_identifier_first(0xF18C)
        first = dealer.authentication(
            TASK.verifyCertificateUnidirectional,
            communication_configuration=0,
            certificate_client=DEALER.certificate,
            challenge_client=b"",
        )
        challenge = bytes(first.service_data.challenge_server)
        codes = []
        for _ in range(3):  # the dealer certificate is public: the attacker presents it too
            other.authentication(
                TASK.verifyCertificateUnidirectional,
                communication_configuration=0,
                certificate_client=DEALER.certificate,
                challenge_client=b"",
            )
            with pytest.raises(NegativeResponseException) as exc:
                other.authentication(
                    TASK.proofOfOwnership,
                    proof_of_ownership_client=DEALER.proof(bytes(32), VIN, serial),
                    ephemeral_public_key_client=b"",
                )
            codes.append(nrc_of(exc))
        done = dealer.authentication(
            TASK.proofOfOwnership,
            proof_of_ownership_client=DEALER.proof(challenge, VIN, serial),
            ephemeral_public_key_client=b"",
        )
        dealer.write_data_by_identifier(0xF198, "SHOP-42")
    assert codes == [0x58, 0x58, 0x36]
    assert done.service_data.return_value == 0x12  # authentication complete
    assert running.car.state.ecus[0x1000].repair_shop_code == "SHOP-42"


def test_a_file_being_received_from_one_tester_cannot_be_overwritten_by_another(
    running: RunningCar,
) -> None:
    mode = services.RequestFileTransfer.ModeOfOperation
    with (
        running.client(tester=DEALER_TESTER) as dealer,
        running.client(tester=OTHER_TESTER) as other,
    ):
        for client in (dealer, other):
            client.change_session(ExtendedSession)
            authenticate(client)
        dealer.request_file_transfer(mode.AddFile, "bundle", filesize=16)
        dealer.transfer_data(1, b"d" * 8)
        with pytest.raises(NegativeResponseException) as exc:
            other.request_file_transfer(mode.ReplaceFile, "bundle", filesize=16)
        dealer.transfer_data(2, b"d" * 8)
        dealer.request_transfer_exit()
    assert nrc_of(exc) == 0x22
    received = running.car.ecus[0x1000].receiver.completed("bundle")
    assert received is not None and received.path.read_bytes() == b"d" * 16
