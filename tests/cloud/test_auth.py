"""Mutual TLS and staff tokens: who is let in, and the code each refusal carries."""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from forecourt.cloud.auth import Scope, issue_token
from forecourt.cloud.registry.dealers import revoke_certificate
from forecourt.cloud.server import _WithTlsExtension, serve_in_thread
from forecourt.trust.oem_pki import OemPki
from tests.cloud.conftest import Clients
from tests.cloud.world import NOW, CloudWorld


def test_client_without_certificate_is_refused_by_a_dealer_only_listener(
    world: CloudWorld, tmp_path: Path
) -> None:
    files = world.tls_files(tmp_path / "strict")
    context = ssl.create_default_context(cadata=files.client_ca.read_text())
    with (
        serve_in_thread(world.app(), files) as url,
        httpx.Client(verify=context) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.get(f"{url}/v1/features")


def test_client_without_certificate_gets_no_dealer_route(clients: Clients) -> None:
    response = clients.anonymous().get("/v1/features")
    assert response.status_code == 401
    assert response.json()["code"] == "client_certificate_required"


def test_client_with_foreign_ca_certificate_is_refused_at_the_handshake(
    world: CloudWorld, clients: Clients
) -> None:
    foreign = OemPki.ephemeral(now=NOW).issue_dealer("DE-MUC-01", "edge-x", now=NOW)
    with pytest.raises(httpx.TransportError):
        clients.dealer("DE-MUC-01", foreign).get("/v1/features")


def test_client_with_expired_certificate_is_refused_at_the_handshake(
    world: CloudWorld, clients: Clients
) -> None:
    old = world.pki.issue_dealer(
        "DE-MUC-01", "edge-old", now=NOW - timedelta(days=400), lifetime=timedelta(days=30)
    )
    with pytest.raises(httpx.TransportError):
        clients.dealer("DE-MUC-01", old).get("/v1/features")


def test_certificate_revoked_on_the_crl_is_refused(world: CloudWorld, clients: Clients) -> None:
    issued = world.pki.issue_dealer("FR-PAR-01", "edge-stolen", now=NOW)
    world.pki.revoke(issued.cert.serial_number, NOW)
    world.pki.publish_crl(NOW)
    response = clients.dealer("FR-PAR-01", issued).get("/v1/features")
    assert response.status_code == 401
    assert response.json()["code"] == "client_certificate_revoked"


def test_crl_published_after_use_refuses_the_next_request_on_the_same_connection(
    world: CloudWorld, clients: Clients
) -> None:
    edge = clients.dealer("DE-MUC-01")
    assert edge.get("/v1/features").status_code == 200
    world.pki.revoke(world.dealer_certs["DE-MUC-01"].cert.serial_number, NOW)
    world.pki.publish_crl(NOW)
    refused = edge.get("/v1/features")
    assert refused.status_code == 401
    assert refused.json()["code"] == "client_certificate_revoked"


def test_certificate_revoked_in_the_registry_is_refused(
    world: CloudWorld, clients: Clients
) -> None:
    edge = clients.dealer("DE-MUC-01")
    assert edge.get("/v1/features").status_code == 200
    with world.context.db.transaction() as session:
        revoke_certificate(session, world.dealer_certs["DE-MUC-01"].cert.serial_number, NOW, "key")
    refused = edge.get("/v1/features")
    assert refused.status_code == 401
    assert refused.json()["code"] == "client_certificate_revoked"


def test_certificate_of_an_unregistered_dealer_is_refused(
    world: CloudWorld, clients: Clients
) -> None:
    stranger = world.pki.issue_dealer("IT-ROM-01", "edge-rome", now=NOW)
    response = clients.dealer("IT-ROM-01", stranger).get("/v1/features")
    assert response.status_code == 403
    assert response.json()["code"] == "dealer_unknown"


def _in_process_get(world: CloudWorld, pem: str | None, path: str) -> httpx.Response:
    """GET through an in-process ASGI transport with the TLS extension set as a proxy would."""
    tls = {"client_cert_chain": [pem] if pem else []}
    transport = httpx.ASGITransport(app=_WithTlsExtension(world.app(), tls))

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="https://cloud.test") as c:
            return await c.get(path)

    return anyio.run(run)


def test_expired_certificate_is_refused_by_the_app_too(world: CloudWorld) -> None:
    """Behind a TLS terminator that let it pass, the app still refuses an expired certificate."""
    from cryptography.hazmat.primitives.serialization import Encoding

    old = world.pki.issue_dealer(
        "DE-MUC-01", "edge-old", now=NOW - timedelta(days=400), lifetime=timedelta(days=30)
    )
    response = _in_process_get(world, old.cert.public_bytes(Encoding.PEM).decode(), "/v1/features")
    assert response.status_code == 401
    assert response.json()["code"] == "client_certificate_expired"


def test_missing_certificate_is_refused_by_the_app_too(world: CloudWorld) -> None:
    response = _in_process_get(world, None, "/v1/features")
    assert response.status_code == 401
    assert response.json()["code"] == "client_certificate_required"


def test_foreign_certificate_is_refused_by_the_app_too(world: CloudWorld) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    foreign = OemPki.ephemeral(now=NOW).issue_dealer("DE-MUC-01", "edge-x", now=NOW)
    pem = foreign.cert.public_bytes(Encoding.PEM).decode()
    response = _in_process_get(world, pem, "/v1/features")
    assert response.status_code == 401
    assert response.json()["code"] == "client_certificate_invalid"


def test_staff_routes_need_a_token_with_the_scope(world: CloudWorld, clients: Clients) -> None:
    anonymous = clients.dealer("DE-MUC-01")
    assert anonymous.get("/v1/dealers").json()["code"] == "token_required"
    bad = anonymous.get("/v1/dealers", headers={"authorization": "Bearer fct_00.nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "token_invalid"
    with world.context.db.transaction() as session:
        reader = issue_token(session, "auditor", frozenset({Scope.READ.value}), NOW)
    headers = {"authorization": f"Bearer {reader}"}
    assert anonymous.get("/v1/dealers", headers=headers).status_code == 200
    denied = anonymous.put("/v1/vehicles/WFKTW3S88RM000001/owner", json={}, headers=headers)
    assert denied.status_code == 403 and denied.json()["code"] == "scope_missing"


def test_openapi_document_is_served(clients: Clients) -> None:
    spec = clients.staff().get("/v1/openapi.json").json()
    assert "/v1/activations" in spec["paths"]
