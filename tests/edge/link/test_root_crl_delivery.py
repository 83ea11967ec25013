"""The edge writes the root's CRL it holds to every car it authenticates to, over DoIP and UDS.

One car with the real OEM PKI pinned: an edge that holds no root CRL works as before; once an
edge delivered a root CRL listing the issuing CA, every dealer certificate of that CA is refused
(0x29 answered 0x57) at the next session, and an edge carrying an older root CRL cannot undo it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from structlog.testing import capture_logs

from forecourt.edge.link import DealerCredentials, LinkConfig
from forecourt.edge.link.connector import ConnectorSettings, DoipCarConnector
from forecourt.edge.workflow.ports import NegativeResponse
from forecourt.trust.oem_pki import OemPki, sign_root_crl
from forecourt.vehicle.runtime import SimulatorHost
from tests.edge.link.test_crl_delivery import GATEWAY, _car, _credentials

ROOT_PASSWORD = b"root-secret"
Reader = Callable[[], bytes | None]


def _none() -> bytes | None:
    return None


def _session(address: str, credentials: DealerCredentials, root_crl: Reader) -> None:
    """One car session of an edge holding ``root_crl``: 0x29 on the gateway, then FD07."""
    connector = DoipCarConnector(
        ConnectorSettings(
            (address,), link=LinkConfig(discovery_timeout=0.5), current_root_crl=root_crl
        ),
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


def test_a_car_refuses_the_dealers_of_a_revoked_ca_after_an_edge_delivered_the_root_crl(
    host: SimulatorHost, tmp_path: Path
) -> None:
    pki = OemPki.create(tmp_path / "pki", ROOT_PASSWORD, b"ca-secret")
    assert pki.directory is not None
    first, second = _credentials(pki, "D0001"), _credentials(pki, "D0002")
    older = sign_root_crl(pki.directory, ROOT_PASSWORD, [0xA1]).public_bytes(Encoding.PEM)
    revoking = sign_root_crl(pki.directory, ROOT_PASSWORD, [pki.ca.serial_number])
    car, address = _car(host, tmp_path / "car", pki)

    _session(address, first, _none)  # no root CRL anywhere: as before
    with capture_logs() as events:
        _session(address, first, lambda: older)
    assert [e["crl"] for e in events if e["event"] == "crl_delivered"] == ["root"]
    assert car.state.root_crl_pem.encode() == older
    _session(address, second, lambda: revoking.public_bytes(Encoding.PEM))
    with pytest.raises(NegativeResponse) as refused:
        _session(address, first, _none)
    assert (refused.value.service, refused.value.nrc) == (0x29, 0x57)
    with pytest.raises(NegativeResponse):
        _session(address, second, lambda: older)  # an older root CRL cannot even get in
    assert car.state.root_crl_pem.encode() == revoking.public_bytes(Encoding.PEM)
