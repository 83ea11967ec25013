"""The edge writes the CRL it holds to every car it authenticates to, so revocations reach cars.

Two dealers' edges, one car with the real OEM PKI pinned (no CRL from the factory): the revoked
dealer is accepted until another dealer's edge has connected to the car once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.edge.link import DealerCredentials, LinkConfig
from forecourt.edge.link.connector import ConnectorSettings, DoipCarConnector
from forecourt.edge.workflow.ports import NegativeResponse
from forecourt.trust.oem_pki import OemPki
from forecourt.trust.uds_auth import EcuContext, prove_possession
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import EntityConfig
from forecourt.vehicle.provision import provision
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.trust_adapter import PkiTesterAuthenticator
from tests.edge.link.conftest import OEM_SECRET, SPEC, random_loopback
from tests.vehicle.doubles import HmacBundleVerifier
from tests.vehicle.pki import anchors

GATEWAY = 0x1000


def _credentials(pki: OemPki, dealer_id: str) -> DealerCredentials:
    issued = pki.issue_dealer(dealer_id, "edge-01")
    key = issued.key
    assert key is not None

    def prove(challenge: bytes, vin: str, serial: str) -> bytes:
        return prove_possession(key, challenge, EcuContext(vin, serial))

    return DealerCredentials(issued.cert.public_bytes(Encoding.DER), prove)


def _car(host: SimulatorHost, directory: Path, pki: OemPki) -> tuple[Car, str]:
    store = provision(directory, SPEC, oem_secret=OEM_SECRET, **anchors(pki))
    services = CarServices(verifier=HmacBundleVerifier(), authenticator=PkiTesterAuthenticator())
    car = Car(store, services)
    for _ in range(10):
        address = random_loopback()
        try:
            host.start_car(car, EntityConfig(address, announce_to=None))
        except OSError:
            continue
        return car, address
    raise RuntimeError("no free loopback address")


def _authenticate(
    address: str, credentials: DealerCredentials, crl: Callable[[], bytes | None]
) -> None:
    connector = DoipCarConnector(
        ConnectorSettings((address,), link=LinkConfig(discovery_timeout=0.5), current_crl=crl),
        credentials,
    )
    session = connector.connect(address)
    try:
        session.authenticate(GATEWAY)
    finally:
        session.close()


@pytest.fixture
def host() -> Iterator[SimulatorHost]:
    simulator = SimulatorHost()
    yield simulator
    simulator.close()


def test_a_revoked_dealer_is_refused_after_another_dealers_edge_delivered_the_crl(
    host: SimulatorHost, tmp_path: Path
) -> None:
    pki = OemPki.ephemeral()
    revoked, honest = _credentials(pki, "D0001"), _credentials(pki, "D0002")
    pki.revoke(x509.load_der_x509_certificate(revoked.certificate).serial_number)
    crl = pki.publish_crl().public_bytes(Encoding.PEM)
    car, address = _car(host, tmp_path / "car", pki)

    _authenticate(address, revoked, lambda: None)  # a fresh car knows of no revocation
    _authenticate(address, honest, lambda: crl)
    with pytest.raises(NegativeResponse) as refused:
        _authenticate(address, revoked, lambda: None)
    assert (refused.value.service, refused.value.nrc) == (0x29, 0x57)
    assert car.state.crl_pem.encode() == crl


def test_an_edge_with_an_older_crl_still_authenticates_and_leaves_the_newer_one(
    host: SimulatorHost, tmp_path: Path
) -> None:
    pki = OemPki.ephemeral()
    older = pki.crl.public_bytes(Encoding.PEM)
    newer = pki.publish_crl().public_bytes(Encoding.PEM)
    car, address = _car(host, tmp_path / "car", pki)
    _authenticate(address, _credentials(pki, "D0001"), lambda: newer)
    _authenticate(address, _credentials(pki, "D0002"), lambda: older)  # 0x22, logged, not fatal
    assert car.state.crl_pem.encode() == newer
