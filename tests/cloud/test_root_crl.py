"""The cloud refuses dealer certificates of an issuing CA the root revoked, at the handshake.

The cloud serves with the PKI directory's ``crl.pem``; the offline ceremony writes
``root-crl.pem`` beside it. The next handshake of a dealer whose issuing CA is listed fails
(``/v1/health`` needs no authentication, so only the handshake can refuse it), without a
restart; a forged, older or expired root CRL written there is refused and changes nothing.
``GET /v1/trust/root-crl`` serves the root CRL to edges, with an ETag like ``/v1/trust/crl``.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from structlog.testing import capture_logs

from forecourt.cloud.app import create_app
from forecourt.cloud.server import TlsFiles, serve_in_thread
from forecourt.trust.certificates import load_crl
from forecourt.trust.crl_reload import ROOT_CRL_FILE, crl_number
from forecourt.trust.errors import CrlInvalid
from forecourt.trust.oem_pki import IssuedCertificate, OemPki, sign_root_crl
from forecourt.trust.tls import client_ssl_context, server_ssl_context
from tests.cloud.world import CloudWorld, build_world

ROOT_PASSWORD = b"root-secret"
# TLS 1.3 sends the server's verdict on the client certificate after the client's Finished,
# so a refusal surfaces on the first read rather than in connect().
REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url)
    yield built
    built.context.db.dispose()


@pytest.fixture
def pki(tmp_path: Path) -> OemPki:
    return OemPki.create(tmp_path / "pki", ROOT_PASSWORD, b"ca-secret")


def _dir(pki: OemPki) -> Path:
    assert pki.directory is not None
    return pki.directory


@dataclass
class Served:
    url: str
    pki: OemPki
    clients: Path

    def health(self, issued: IssuedCertificate, name: str) -> int:
        """GET /v1/health on a new connection presenting ``issued``."""
        paths = issued.write_pem_bundle(self.clients / name, name="edge")
        context: ssl.SSLContext = client_ssl_context(paths.cert, paths.key, paths.ca)
        with httpx.Client(base_url=self.url, verify=context) as client:
            return client.get("/v1/health").status_code

    def anonymous(self) -> httpx.Client:
        context = ssl.create_default_context(
            cadata=self.pki.root.public_bytes(Encoding.PEM).decode()
        )
        return httpx.Client(base_url=self.url, verify=context)


@contextmanager
def _serve(world: CloudWorld, pki: OemPki, tmp_path: Path) -> Iterator[Served]:
    """The cloud over mutual TLS with this PKI's crl.pem (root-crl.pem beside it, if any)."""
    root_crl_path = _dir(pki) / ROOT_CRL_FILE

    def root_crl() -> x509.CertificateRevocationList | None:
        return load_crl(root_crl_path.read_bytes()) if root_crl_path.exists() else None

    server = pki.issue_cloud(("localhost", "127.0.0.1")).write_pem_bundle(
        tmp_path / "server", name="server"
    )
    files = TlsFiles(server.cert, server.key, server.ca, crl=_dir(pki) / "crl.pem")
    config = dataclasses.replace(world.config, root_crl=root_crl)
    context = dataclasses.replace(world.context, config=config)
    app = create_app(config, context)
    with serve_in_thread(app, files, staff_without_certificate=True) as url:
        yield Served(url, pki, tmp_path / "clients")


def _root_signed(
    pki: OemPki, serials: list[int], number: int, this_update: datetime, next_update: datetime
) -> bytes:
    """A root CRL made by hand with the offline root key (for cases the ceremony never makes)."""
    key = serialization.load_pem_private_key(
        (_dir(pki) / "offline" / "root-key.pem").read_bytes(), ROOT_PASSWORD
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return _signed(pki, key, serials, number, this_update, next_update)


def _signed(  # noqa: PLR0917 - a test helper, every field of the CRL
    pki: OemPki,
    key: ec.EllipticCurvePrivateKey,
    serials: list[int],
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update)
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def test_without_a_root_crl_dealers_are_served_and_the_route_answers_404(
    world: CloudWorld, pki: OemPki, tmp_path: Path
) -> None:
    dealer = pki.issue_dealer("D1", "E1")
    with _serve(world, pki, tmp_path) as served:
        assert served.health(dealer, "d1") == 200
        with served.anonymous() as client:
            answer = client.get("/v1/trust/root-crl")
    assert answer.status_code == 404
    assert answer.json()["code"] == "crl_unavailable"


def test_a_ca_revoked_after_start_is_refused_at_the_next_handshake_and_served_to_edges(
    world: CloudWorld, pki: OemPki, tmp_path: Path
) -> None:
    dealer = pki.issue_dealer("D1", "E1")
    with _serve(world, pki, tmp_path) as served, capture_logs() as events:
        sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number + 1])
        with pytest.raises(REFUSED):  # the connection that brings the first root CRL in force
            served.health(dealer, "first-root-crl")
        assert served.health(dealer, "other-ca-revoked") == 200  # every CA checked, not listed
        sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number])
        with pytest.raises(REFUSED):
            served.health(dealer, "ca-revoked")
        with served.anonymous() as client:
            answer = client.get("/v1/trust/root-crl")
            etag = answer.headers["etag"]
            again = client.get("/v1/trust/root-crl", headers={"if-none-match": etag})
    reloaded = [e["root_number"] for e in events if e["event"] == "crl_reloaded"]
    assert reloaded == [1, 2]
    assert [e["number"] for e in events if e["event"] == "root_crl_enabled"] == [1]
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pkix-crl"
    served_crl = x509.load_der_x509_crl(answer.content)
    assert crl_number(served_crl) == 2
    assert served_crl.get_revoked_certificate_by_serial_number(pki.ca.serial_number) is not None
    assert again.status_code == 304 and again.content == b""


def test_a_forged_older_or_expired_root_crl_is_refused_and_the_ca_stays_revoked(
    world: CloudWorld, pki: OemPki, tmp_path: Path
) -> None:
    dealer = pki.issue_dealer("D1", "E1")
    path = _dir(pki) / ROOT_CRL_FILE
    first = sign_root_crl(_dir(pki), ROOT_PASSWORD, [0xA1]).public_bytes(Encoding.PEM)
    sign_root_crl(_dir(pki), ROOT_PASSWORD, [pki.ca.serial_number])
    now = datetime.now(UTC)
    forged = _signed(
        pki, ec.generate_private_key(ec.SECP256R1()), [], 99, now, now + timedelta(days=9)
    )
    expired = _root_signed(pki, [], 3, now - timedelta(days=9), now - timedelta(days=1))
    with _serve(world, pki, tmp_path) as served, capture_logs() as events:
        with pytest.raises(REFUSED):
            served.health(dealer, "at-start")
        for name, data in (("forged", forged), ("older", first), ("expired", expired)):
            path.write_bytes(data)
            with pytest.raises(REFUSED):
                served.health(dealer, name)
    refused = [e["detail"] for e in events if e["event"] == "crl_reload_refused"]
    assert len(refused) == 3
    assert "not signed by a pinned root" in refused[0]
    assert "does not supersede number 2" in refused[1]
    assert "expired" in refused[2]
    assert not [e for e in events if e["event"] == "crl_reloaded"]


def test_an_unusable_root_crl_at_start_refuses_to_build_the_listener(
    pki: OemPki, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    forged = _signed(
        pki, ec.generate_private_key(ec.SECP256R1()), [], 1, now, now + timedelta(days=9)
    )
    (_dir(pki) / ROOT_CRL_FILE).write_bytes(forged)
    server = pki.issue_cloud(("localhost",)).write_pem_bundle(tmp_path / "server", name="s")
    with pytest.raises(CrlInvalid, match="not signed by a pinned root"):
        server_ssl_context(server.cert, server.key, server.ca, _dir(pki) / "crl.pem")
