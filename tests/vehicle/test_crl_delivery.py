"""A car learns of revoked dealer certificates from the CRL an authenticated tester writes (FD07).

It takes a CRL only if the pinned issuing CA signed it and it is newer than the one it holds,
persists it, and checks 0x29 against it from then on — also after its nextUpdate has passed
(staleness never locks every dealer out).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.trust.oem_pki import OemPki
from forecourt.trust.testing import NOW
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.provision import provision
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import PkiTesterAuthenticator
from forecourt.vehicle.uds.security_access import compute_key, derive_ecu_secret
from tests.vehicle.conftest import OEM_SECRET
from tests.vehicle.pki import Dealer, anchors, dealer_of
from tests.vehicle.test_trust_services import _exchange
from tests.vehicle.test_trust_wiring import SPEC

WRITE_CRL = b"\x2e\xfd\x07"
AUTHENTICATED = b"\x69\x03\x12\x00\x00"
REVOKED = b"\x7f\x29\x57"


class GatewayTester:
    """One in-process tester on the gateway: its own session, as a connection would have."""

    def __init__(self, car: Car) -> None:
        self.ecu = car.ecus[0x1000]
        self.session = self.ecu.open_session(0x0E80)

    def send(self, request: bytes) -> bytes:
        sent: list[bytes] = []

        async def respond(data: bytes) -> None:
            sent.append(data)

        asyncio.run(self.ecu.handle(request, respond, self.session))
        return sent[-1]

    def unlock_extended(self) -> None:
        assert self.send(b"\x10\x03")[0] == 0x50
        seed = self.send(b"\x27\x01")[2:]
        secret = derive_ecu_secret(OEM_SECRET, "CGW0001")
        assert self.send(b"\x27\x02" + compute_key(secret, 1, seed)) == b"\x67\x02"

    def write_crl(self, crl: x509.CertificateRevocationList | bytes) -> bytes:
        data = crl if isinstance(crl, bytes) else crl.public_bytes(Encoding.DER)
        return self.send(WRITE_CRL + data)


@pytest.fixture
def pki() -> OemPki:
    return OemPki.ephemeral(NOW)


def _car(directory: Path, pki: OemPki, clock: datetime = NOW) -> Car:
    store = CarStore(directory)
    if not store.exists():
        provision(directory, SPEC, oem_secret=OEM_SECRET, **anchors(pki))
    return Car(store, CarServices(authenticator=PkiTesterAuthenticator(), now=lambda: clock))


def _revoke(pki: OemPki, dealer: Dealer) -> x509.CertificateRevocationList:
    pki.revoke(x509.load_der_x509_certificate(dealer.certificate).serial_number, NOW)
    return pki.publish_crl(NOW)


def test_a_revoked_dealer_is_refused_once_another_dealer_delivered_the_newer_crl(
    tmp_path: Path, pki: OemPki
) -> None:
    revoked, honest = dealer_of(pki, NOW, "D0001"), dealer_of(pki, NOW, "D0002")
    crl = _revoke(pki, revoked)
    car = _car(tmp_path / "car", pki)
    assert _exchange(car, revoked) == AUTHENTICATED  # a fresh car holds no CRL
    tester = GatewayTester(car)
    tester.unlock_extended()
    assert tester.write_crl(crl) == b"\x6e\xfd\x07"
    assert _exchange(car, revoked) == REVOKED
    assert _exchange(car, honest) == AUTHENTICATED
    restarted = _car(tmp_path / "car", pki)
    assert _exchange(restarted, revoked) == REVOKED  # persisted


def test_a_crl_past_its_next_update_still_revokes_and_locks_no_other_dealer_out(
    tmp_path: Path, pki: OemPki
) -> None:
    revoked, honest = dealer_of(pki, NOW, "D0001"), dealer_of(pki, NOW, "D0002")
    tester = GatewayTester(_car(tmp_path / "car", pki))
    tester.unlock_extended()
    assert tester.write_crl(_revoke(pki, revoked))[0] == 0x6E
    weeks_later = _car(tmp_path / "car", pki, clock=NOW + timedelta(days=30))
    assert _exchange(weeks_later, honest) == AUTHENTICATED
    assert _exchange(weeks_later, revoked) == REVOKED


def test_an_older_crl_cannot_replace_a_newer_one(tmp_path: Path, pki: OemPki) -> None:
    revoked = dealer_of(pki, NOW, "D0001")
    before_revocation = pki.publish_crl(NOW)
    newer = _revoke(pki, revoked)
    car = _car(tmp_path / "car", pki)
    tester = GatewayTester(car)
    tester.unlock_extended()
    assert tester.write_crl(newer)[0] == 0x6E
    held = car.state.crl_pem
    assert tester.write_crl(before_revocation) == b"\x7f\x2e\x22"
    assert car.state.crl_pem == held
    assert _exchange(car, revoked) == REVOKED
    assert tester.write_crl(newer) == b"\x6e\xfd\x07"  # the same CRL again: accepted, no change
    assert car.state.crl_pem == held


def test_a_crl_not_signed_by_the_pinned_issuing_ca_is_refused(tmp_path: Path, pki: OemPki) -> None:
    other = OemPki.ephemeral(NOW)
    car = _car(tmp_path / "car", pki)
    tester = GatewayTester(car)
    tester.unlock_extended()
    assert tester.write_crl(other.crl) == b"\x7f\x2e\x31"
    assert tester.write_crl(b"\x30\x03\x02\x01\x00") == b"\x7f\x2e\x13"
    assert car.state.crl_pem == ""


def test_an_anonymous_tester_cannot_write_the_crl_in_any_session(
    tmp_path: Path, pki: OemPki
) -> None:
    car = _car(tmp_path / "car", pki)
    tester = GatewayTester(car)
    assert tester.write_crl(pki.crl) == b"\x7f\x2e\x7f"
    assert tester.send(b"\x10\x03")[0] == 0x50
    assert tester.write_crl(pki.crl) == b"\x7f\x2e\x33"
    assert car.state.crl_pem == ""
