"""Request bodies are bounded before the app reads them, over real HTTP(S).

A caller without a client certificate gets 401 on a dealer route before a byte of its body is
read; a body above the caller's limit is answered 413 whether it declares its length or streams
it chunked; package uploads keep their own (blob store) bound.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.cloud.config import KIB, MIB, BodyLimits
from forecourt.cloud.limits import RouteClass, classify_routes
from forecourt.cloud.server import serve_in_thread
from forecourt.trust.tls import client_ssl_context
from tests.cloud.world import CloudWorld, build_world


@pytest.fixture
def world(sqlite_url: str) -> Iterator[CloudWorld]:
    built = build_world(sqlite_url)
    yield built
    built.context.db.dispose()


@pytest.fixture
def url(world: CloudWorld, tmp_path: Path) -> Iterator[str]:
    with serve_in_thread(
        world.app(), world.tls_files(tmp_path / "server"), staff_without_certificate=True
    ) as served:
        yield served


def _anonymous(world: CloudWorld, url: str) -> httpx.Client:  # no client certificate
    root = world.pki.root.public_bytes(Encoding.PEM).decode()
    return httpx.Client(base_url=url, verify=ssl.create_default_context(cadata=root))


def _dealer(world: CloudWorld, url: str, directory: Path) -> httpx.Client:
    dealer = world.demo.dealers[0].dealer_id
    paths = world.dealer_certs[dealer].write_pem_bundle(directory, name="edge")
    return httpx.Client(base_url=url, verify=client_ssl_context(paths.cert, paths.key, paths.ca))


class _Counted:
    """A chunked request body that counts how much of it was sent."""

    def __init__(self, size: int, chunk: int = 64 * KIB) -> None:
        self.size, self.chunk, self.sent = size, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.size:
            part = min(self.chunk, self.size - self.sent)
            self.sent += part
            yield b" " * part


def test_a_dealer_route_without_certificate_is_refused_before_its_body_is_read(
    world: CloudWorld, url: str
) -> None:
    """Headers announce 8 MiB and no body byte is sent: an app that read the body first would
    wait for it (the socket timeout fails the test); the middleware answers at once."""
    root = world.pki.root.public_bytes(Encoding.PEM).decode()
    context = ssl.create_default_context(cadata=root)
    host, port = url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(
            b"POST /v1/sync/events HTTP/1.1\r\nhost: localhost\r\n"
            b"content-type: application/cloudevents-batch+json\r\n"
            + f"content-length: {8 * MIB}\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401")
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["code"] == "client_certificate_required"


def test_a_declared_body_above_the_dealer_limit_is_refused_with_413(
    world: CloudWorld, url: str, tmp_path: Path
) -> None:
    with _dealer(world, url, tmp_path) as client:
        answer = client.post(
            "/v1/sync/events",
            content=b"[" + b" " * (2 * MIB) + b"]",
            headers={"content-type": "application/cloudevents-batch+json"},
        )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "request_body_too_large"
    assert answer.json()["limit"] == MIB


def test_a_streamed_body_is_cut_at_the_limit_with_413(
    world: CloudWorld, url: str, tmp_path: Path
) -> None:
    body = _Counted(4 * MIB)
    with _dealer(world, url, tmp_path) as client:
        answer = client.post(
            "/v1/sync/events",
            content=body,  # an iterator: sent chunked, no Content-Length
            headers={"content-type": "application/cloudevents-batch+json"},
        )
    assert answer.status_code == 413
    assert answer.json()["code"] == "request_body_too_large"


def test_an_anonymous_caller_has_the_smaller_limit(world: CloudWorld, url: str) -> None:
    with _anonymous(world, url) as client:
        answer = client.post("/v1/health", content=b" " * (300 * KIB))
    assert answer.status_code == 413
    assert answer.json()["limit"] == BodyLimits().anonymous


def test_a_dealer_batch_within_the_limit_is_served(
    world: CloudWorld, url: str, tmp_path: Path
) -> None:
    with _dealer(world, url, tmp_path) as client:
        answer = client.post(
            "/v1/sync/events",
            content=json.dumps([]).encode() + b" " * (512 * KIB),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
    assert answer.status_code == 200, answer.text


def test_package_uploads_and_dealer_routes_are_classified_from_the_app(world: CloudWorld) -> None:
    classify = classify_routes(world.app().routes)

    def kind(method: str, path: str) -> RouteClass:
        return classify({"type": "http", "method": method, "path": path})

    assert kind("POST", "/v1/sync/events") is RouteClass.DEALER
    assert kind("POST", "/v1/activations") is RouteClass.DEALER
    assert kind("PUT", "/v1/dealer/operators") is RouteClass.DEALER
    assert kind("PUT", "/v1/packages/" + "a" * 64) is RouteClass.PACKAGE_UPLOAD
    assert kind("GET", "/v1/ledger/checkpoints") is RouteClass.OTHER  # dealer or staff
    assert kind("PUT", "/v1/features/X") is RouteClass.OTHER  # staff
