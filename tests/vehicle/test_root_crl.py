"""A car learns of revoked issuing CAs from the root's CRL an authenticated tester writes (FD07).

The car tells it from the issuing CA's CRL by its issuer (the pinned root), takes it only if the
pinned root signed it and it is newer than the root CRL held, keeps just the newest one, and from
then on refuses every dealer certificate of a listed CA (0x57), also after a restart. A root
CRL past its nextUpdate still applies, as the issuing CA's does (``forecourt.vehicle.revocation``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.trust.oem_pki import OemPki, sign_root_crl
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.provision import provision
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import PkiTesterAuthenticator
from tests.vehicle.conftest import OEM_SECRET
from tests.vehicle.pki import anchors, dealer_of
from tests.vehicle.test_crl_delivery import AUTHENTICATED, REVOKED, GatewayTester
from tests.vehicle.test_trust_services import _exchange
from tests.vehicle.test_trust_wiring import SPEC

ROOT_PASSWORD = b"root-secret"
WRITTEN = b"\x6e\xfd\x07"


@pytest.fixture
def pki(tmp_path: Path) -> OemPki:
    return OemPki.create(tmp_path / "pki", ROOT_PASSWORD, b"ca-secret")


def _ceremony(pki: OemPki) -> Callable[..., x509.CertificateRevocationList]:
    assert pki.directory is not None
    directory = pki.directory

    def sign(
        *serials: int, lifetime: timedelta = timedelta(days=365)
    ) -> x509.CertificateRevocationList:
        return sign_root_crl(directory, ROOT_PASSWORD, list(serials), lifetime=lifetime)

    return sign


def _car(directory: Path, pki: OemPki, clock: datetime | None = None) -> Car:
    store = CarStore(directory)
    if not store.exists():
        provision(directory, SPEC, oem_secret=OEM_SECRET, **anchors(pki))
    moment = clock or datetime.now(UTC)
    return Car(store, CarServices(authenticator=PkiTesterAuthenticator(), now=lambda: moment))


def test_a_root_crl_revoking_the_issuing_ca_refuses_its_dealers_also_after_a_restart(
    tmp_path: Path, pki: OemPki
) -> None:
    dealer, other = dealer_of(pki, dealer_id="D0001"), dealer_of(pki, dealer_id="D0002")
    car = _car(tmp_path / "car", pki)
    tester = GatewayTester(car)
    tester.unlock_extended()
    assert tester.write_crl(pki.crl) == WRITTEN  # the issuing CA's CRL: no CA revoked
    assert tester.write_crl(_ceremony(pki)(0xA1)) == WRITTEN  # another CA revoked
    assert _exchange(car, dealer) == AUTHENTICATED
    issuing_crl = car.state.crl_pem
    revoking = _ceremony(pki)(pki.ca.serial_number, lifetime=timedelta(days=1))
    assert tester.write_crl(revoking) == WRITTEN
    assert car.state.crl_pem == issuing_crl  # the issuing CA's CRL is kept beside it
    assert _exchange(car, dealer) == REVOKED
    assert _exchange(car, other) == REVOKED  # every certificate of that CA
    restarted = _car(tmp_path / "car", pki, clock=datetime.now(UTC) + timedelta(days=30))
    assert _exchange(restarted, dealer) == REVOKED  # persisted, and past nextUpdate it holds


def _forged(pki: OemPki, serial: int) -> x509.CertificateRevocationList:
    now = datetime.now(UTC)
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.subject)
        .last_update(now)
        .next_update(now + timedelta(days=9))
        .add_extension(x509.CRLNumber(99), critical=False)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )


def test_a_forged_or_older_root_crl_is_refused_and_changes_nothing(
    tmp_path: Path, pki: OemPki
) -> None:
    dealer = dealer_of(pki)
    sign = _ceremony(pki)
    older = sign(0xA1)
    newer = sign(0xB2)
    car = _car(tmp_path / "car", pki)
    tester = GatewayTester(car)
    tester.unlock_extended()
    assert tester.write_crl(_forged(pki, pki.ca.serial_number)) == b"\x7f\x2e\x31"
    assert car.state.root_crl_pem == ""
    assert _exchange(car, dealer) == AUTHENTICATED
    assert tester.write_crl(newer) == WRITTEN
    held = car.state.root_crl_pem
    assert tester.write_crl(older) == b"\x7f\x2e\x22"  # a rollback is refused
    assert tester.write_crl(newer) == WRITTEN  # the same again: accepted, nothing changes
    assert car.state.root_crl_pem == held == newer.public_bytes(Encoding.PEM).decode()


def test_the_car_keeps_only_the_newest_root_crl(tmp_path: Path, pki: OemPki) -> None:
    sign = _ceremony(pki)
    car = _car(tmp_path / "car", pki)
    tester = GatewayTester(car)
    tester.unlock_extended()
    sizes = []
    for serial in (0xA1, 0xA2, 0xA3):
        assert tester.write_crl(sign(serial)) == WRITTEN
        sizes.append(len(CarStore(tmp_path / "car").state_path.read_bytes()))
    latest = x509.load_pem_x509_crl(car.state.root_crl_pem.encode())
    assert {r.serial_number for r in latest} == {0xA1, 0xA2, 0xA3}
    assert car.state.to_json().count(b"BEGIN X509 CRL") == 1
    assert sizes[2] - sizes[0] < 400  # grows by the listed serials, not by a CRL per write
