"""The listener's handshake checks client certificates against the newest CRL, without restart.

A cloud serves with the issuing CA's ``crl.pem``; the CA then revokes a dealer certificate and
publishes a new CRL to that file. The next new connection with the revoked certificate fails
the handshake (``/v1/health`` needs no authentication, so only the handshake can refuse it),
while other dealers are still served. The CRLs are published within one second of each other on
purpose: equal thisUpdate is the case where adding CRLs to a live OpenSSL store keeps the older.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from structlog.testing import capture_logs

from forecourt.cloud.server import serve_in_thread
from forecourt.trust.oem_pki import IssuedCertificate
from forecourt.trust.tls import client_ssl_context
from tests.cloud.world import NOW, CloudWorld, build_world, edge_name

# TLS 1.3 sends the server's verdict on the client certificate after the client's Finished,
# so a refusal surfaces on the first read rather than in connect().
REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url)
    yield built
    built.context.db.dispose()


@dataclass
class Served:
    url: str
    crl: Path
    directory: Path

    def health(self, issued: IssuedCertificate, name: str) -> int:
        """GET /v1/health on a new connection presenting ``issued``."""
        paths = issued.write_pem_bundle(self.directory / name, name="edge")
        context: ssl.SSLContext = client_ssl_context(paths.cert, paths.key, paths.ca)
        with httpx.Client(base_url=self.url, verify=context) as client:
            return client.get("/v1/health").status_code


@pytest.fixture
def served(world: CloudWorld, tmp_path: Path) -> Iterator[Served]:
    crl = tmp_path / "crl.pem"
    crl.write_bytes(world.pki.crl.public_bytes(Encoding.PEM))
    files = replace(world.tls_files(tmp_path / "server"), crl=crl)
    with serve_in_thread(world.app(), files, staff_without_certificate=True) as url:
        yield Served(url, crl, tmp_path / "clients")


def _revoke_and_publish(world: CloudWorld, served: Served, *, atomic: bool) -> IssuedCertificate:
    """Issue a dealer certificate, then revoke it on a CRL written to the listener's file."""
    dealer = world.demo.dealers[0].dealer_id
    issued = world.pki.issue_dealer(dealer, edge_name(dealer), now=NOW)
    return _revoke(world, served, issued, atomic=atomic)


def _revoke(
    world: CloudWorld, served: Served, issued: IssuedCertificate, *, atomic: bool
) -> IssuedCertificate:
    world.pki.revoke(issued.cert.serial_number, now=NOW)
    pem = world.pki.publish_crl(NOW).public_bytes(Encoding.PEM)
    if atomic:
        staged = served.crl.with_suffix(".tmp")
        staged.write_bytes(pem)
        os.replace(staged, served.crl)
    else:
        served.crl.write_bytes(pem)
    return issued


@pytest.mark.parametrize("atomic", [False, True], ids=["rewritten", "replaced"])
def test_a_certificate_revoked_after_the_server_started_is_refused_at_the_next_handshake(
    world: CloudWorld, served: Served, atomic: bool
) -> None:
    dealer = world.demo.dealers[0].dealer_id
    doomed = world.pki.issue_dealer(dealer, edge_name(dealer), now=NOW)
    assert served.health(doomed, "before") == 200
    with capture_logs() as events:
        _revoke(world, served, doomed, atomic=atomic)
        with pytest.raises(REFUSED):
            served.health(doomed, "after")
    assert served.health(world.dealer_certs[dealer], "good") == 200
    reloaded = [e for e in events if e["event"] == "crl_reloaded"]
    assert [(e["previous"], e["number"]) for e in reloaded] == [(1, 2)]


def test_each_later_publication_applies_too(world: CloudWorld, served: Served) -> None:
    first = _revoke_and_publish(world, served, atomic=True)
    second = _revoke_and_publish(world, served, atomic=False)
    for issued, name in ((first, "first"), (second, "second")):
        with pytest.raises(REFUSED):
            served.health(issued, name)
    dealer = world.demo.dealers[0].dealer_id
    assert served.health(world.dealer_certs[dealer], "good") == 200


def test_an_older_crl_written_back_does_not_unrevoke_and_is_logged(
    world: CloudWorld, served: Served
) -> None:
    original = served.crl.read_bytes()
    revoked = _revoke_and_publish(world, served, atomic=True)
    with pytest.raises(REFUSED):
        served.health(revoked, "revoked")
    with capture_logs() as events:
        served.crl.write_bytes(original)
        with pytest.raises(REFUSED):
            served.health(revoked, "after-rollback")
    refusals = [e for e in events if e["event"] == "crl_reload_refused"]
    assert [(e["reason"], e["number_in_force"]) for e in refusals] == [("not_newer", 2)]


def test_an_unreadable_crl_file_keeps_the_crl_in_force_until_a_valid_one_arrives(
    world: CloudWorld, served: Served
) -> None:
    dealer = world.demo.dealers[0].dealer_id
    revoked = _revoke_and_publish(world, served, atomic=True)
    with pytest.raises(REFUSED):
        served.health(revoked, "revoked")
    with capture_logs() as events:
        served.crl.write_bytes(b"-----BEGIN X509 CRL-----\nhalf a fi")
        with pytest.raises(REFUSED):
            served.health(revoked, "still-revoked")
        assert served.health(world.dealer_certs[dealer], "good") == 200
    assert [e["reason"] for e in events if e["event"] == "crl_reload_refused"] == ["unreadable"]
    later = _revoke_and_publish(world, served, atomic=False)
    with pytest.raises(REFUSED):
        served.health(later, "later")
