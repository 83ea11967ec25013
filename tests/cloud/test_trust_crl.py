"""``GET /v1/trust/crl`` serves the issuing CA's current CRL to edges, over the real listener.

The CRL is the one the cloud checks dealers against (``CloudConfig.crl``), as DER under
``application/pkix-crl``; its ETag (SHA-256 of the DER) lets an edge ask only for a newer one.
The route is protected like ``/v1/trust/roots``: whoever completes the handshake may read it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.cloud.app import create_app
from forecourt.cloud.server import serve_in_thread
from forecourt.trust.crl_reload import crl_number
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld, build_world, edge_name


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url)
    yield built
    built.context.db.dispose()


def _etag(crl: x509.CertificateRevocationList) -> str:
    return f'"{hashlib.sha256(crl.public_bytes(Encoding.DER)).hexdigest()}"'


def test_a_dealer_gets_the_current_crl_as_der_with_its_sha256_etag(
    world: CloudWorld, clients: Clients
) -> None:
    dealer = clients.dealer(world.demo.dealers[0].dealer_id)
    answer = dealer.get("/v1/trust/crl")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pkix-crl"
    assert answer.content == world.pki.crl.public_bytes(Encoding.DER)
    assert answer.headers["etag"] == _etag(world.pki.crl)
    assert "no-cache" in answer.headers["cache-control"]
    crl = x509.load_der_x509_crl(answer.content)
    assert crl.is_signature_valid(world.pki.ca.public_key())  # type: ignore[arg-type]


def test_if_none_match_with_the_current_etag_is_answered_304_without_a_body(
    world: CloudWorld, clients: Clients
) -> None:
    dealer = clients.dealer(world.demo.dealers[0].dealer_id)
    etag = dealer.get("/v1/trust/crl").headers["etag"]
    again = dealer.get("/v1/trust/crl", headers={"if-none-match": f'"other", {etag}'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag


def test_a_newly_published_crl_is_served_at_once_under_a_new_etag(
    world: CloudWorld, clients: Clients
) -> None:
    dealer = clients.dealer(world.demo.dealers[0].dealer_id)
    old_etag = dealer.get("/v1/trust/crl").headers["etag"]
    other = world.demo.dealers[1].dealer_id
    world.pki.revoke(world.pki.issue_dealer(other, edge_name(other), now=NOW).cert.serial_number)
    published = world.pki.publish_crl(NOW)
    answer = dealer.get("/v1/trust/crl", headers={"if-none-match": old_etag})
    assert answer.status_code == 200
    assert answer.headers["etag"] == _etag(published) != old_etag
    assert crl_number(x509.load_der_x509_crl(answer.content)) == crl_number(published)


def test_the_crl_is_protected_like_the_trust_roots_a_caller_without_certificate_reads_both(
    clients: Clients,
) -> None:
    anonymous = clients.anonymous()
    assert anonymous.get("/v1/trust/roots").status_code == 200
    assert anonymous.get("/v1/trust/crl").status_code == 200


def test_without_a_configured_crl_the_answer_is_404_crl_unavailable(
    world: CloudWorld, tmp_path: Path
) -> None:
    config = dataclasses.replace(world.config, crl=lambda: None)
    context = dataclasses.replace(world.context, config=config)
    files = world.tls_files(tmp_path / "server")
    with serve_in_thread(create_app(config, context), files, staff_without_certificate=True) as url:
        clients = Clients(world, url, tmp_path / "clients")
        try:
            answer = clients.dealer(world.demo.dealers[0].dealer_id).get("/v1/trust/crl")
        finally:
            clients.close()
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "crl_unavailable"
