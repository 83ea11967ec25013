"""The cloud listener and the edge's cloud client hold the documented TLS policy.

TLS 1.2 or later, ECDHE key exchange with AEAD suites only, the OEM root as the only anchor, and
the issuing CA's CRL checked during the handshake: a client offering only a CBC suite or TLS 1.1,
or presenting a revoked certificate, never reaches the application. The edge's client refuses a
server that offers only CBC suites.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.blobs import RetryPolicy
from forecourt.cloud.server import serve_in_thread
from forecourt.edge.cloud_client import CloudUnreachable, HttpCloudClient, MutualTls
from forecourt.http.serving import serve_in_thread as serve
from forecourt.trust.tls import client_ssl_context
from tests.cloud.world import NOW, CloudWorld, build_world, edge_name

CBC_SUITES = "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384"


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url)
    yield built
    built.context.db.dispose()


def _dealer_context(world: CloudWorld, directory: Path, dealer_id: str) -> ssl.SSLContext:
    paths = world.dealer_certs[dealer_id].write_pem_bundle(directory, name="edge")
    return client_ssl_context(paths.cert, paths.key, paths.ca)


def _handshake(url: str, context: ssl.SSLContext) -> str:
    """The answer to GET /v1/health over ``context``: the status, or the TLS failure."""
    with httpx.Client(base_url=url, verify=context) as client:
        return str(client.get("/v1/health").status_code)


@pytest.fixture
def served(world: CloudWorld, tmp_path: Path) -> Iterator[str]:
    crl = tmp_path / "crl.pem"
    crl.write_bytes(world.pki.crl.public_bytes(Encoding.PEM))
    files = replace(world.tls_files(tmp_path / "server"), crl=crl)
    with serve_in_thread(world.app(), files, staff_without_certificate=True) as url:
        yield url


def test_a_dealer_offering_ecdhe_aead_is_served(
    world: CloudWorld, served: str, tmp_path: Path
) -> None:
    dealer = world.demo.dealers[0].dealer_id
    assert _handshake(served, _dealer_context(world, tmp_path, dealer)) == "200"


def test_a_client_offering_only_cbc_suites_is_refused_at_the_handshake(
    world: CloudWorld, served: str, tmp_path: Path
) -> None:
    context = _dealer_context(world, tmp_path, world.demo.dealers[0].dealer_id)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CBC_SUITES)
    with pytest.raises(httpx.ConnectError):
        _handshake(served, context)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_client_speaking_only_tls_1_1_is_refused_at_the_handshake(
    world: CloudWorld, served: str, tmp_path: Path
) -> None:
    context = _dealer_context(world, tmp_path, world.demo.dealers[0].dealer_id)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client itself offer TLS 1.1
    context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(httpx.ConnectError):
        _handshake(served, context)


def test_a_revoked_dealer_certificate_is_refused_at_the_handshake(
    world: CloudWorld, tmp_path: Path
) -> None:
    dealer = world.demo.dealers[0].dealer_id
    revoked = world.pki.issue_dealer(dealer, edge_name(dealer), now=NOW)
    world.pki.revoke(revoked.cert.serial_number, now=NOW)
    crl = tmp_path / "crl.pem"
    crl.write_bytes(world.pki.publish_crl(NOW).public_bytes(Encoding.PEM))
    files = replace(world.tls_files(tmp_path / "server"), crl=crl)
    paths = revoked.write_pem_bundle(tmp_path / "revoked", name="edge")
    context = client_ssl_context(paths.cert, paths.key, paths.ca)
    with serve_in_thread(world.app(), files, staff_without_certificate=True) as url:
        # TLS 1.3 sends the server's verdict on the client certificate after the client's
        # Finished, so the refusal surfaces on the first read rather than in connect().
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            _handshake(url, context)
        assert _handshake(url, _dealer_context(world, tmp_path / "good", dealer)) == "200"


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_the_edge_client_refuses_a_cloud_offering_only_cbc_suites(
    world: CloudWorld, tmp_path: Path
) -> None:
    server = world.tls_files(tmp_path / "server")

    def cbc_only(_config: uvicorn.Config, _default: Any) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(CBC_SUITES)
        context.load_cert_chain(server.cert, server.key)
        return context

    config = uvicorn.Config(
        _ok,
        ssl_certfile=str(server.cert),
        ssl_context_factory=cbc_only,
        lifespan="off",
        log_level="critical",
    )
    dealer = world.demo.dealers[0].dealer_id
    paths = world.dealer_certs[dealer].write_pem_bundle(tmp_path / "edge", name="edge")
    with serve(config, "127.0.0.1", name="cbc-only") as url:
        client = HttpCloudClient(
            url,
            tls=MutualTls(paths.cert, paths.key, paths.ca),
            retry=RetryPolicy(max_attempts=1),
            sleep=lambda _s: None,
        )
        with pytest.raises(CloudUnreachable):
            client.assignment(world.activatable()[0].vin.value)
