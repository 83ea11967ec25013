"""Where a webhook may go: the address rules, and that the vetted address is the one dialled.

No DNS server and no outside network: names resolve through an injected resolver, and what the
transport dials is recorded by a network backend under the vetting layer (or, for TLS, served by
a real local TLS receiver whose certificate names the partner's host, not its address).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import typing
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from forecourt.cloud.integrations.destinations import (
    ALLOW_LOOPBACK_ENV,
    DestinationNotAllowed,
    DestinationPolicy,
    DestinationUnresolvable,
    VettingTransport,
)

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link_local"),  # the cloud metadata service
    ("fe80::1", "link_local"),
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("fc00::1", "unique_local"),
    ("fd00:ec2::254", "unique_local"),  # the metadata service over IPv6
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link_local"),
    ("64:ff9b::a9fe:a9fe", "link_local"),  # NAT64 of 169.254.169.254
    ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("0.1.2.3", "this_network"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("2001:db8::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.0.8", "protocol_assignments"),
    ("fec0::1", "site_local"),
]
ALLOWED = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"]


class Dns:
    """A resolver answering from a script, one answer list per lookup, the last one repeated."""

    def __init__(self, *answers: list[str]) -> None:
        self.script = list(answers)
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[tuple[Any, Any, Any, Any, Any]]:
        self.lookups.append((host, port))
        if not self.script:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_an_address_that_is_not_globally_routable_is_refused_literal_or_resolved(
    address: str, reason: str
) -> None:
    policy = DestinationPolicy(resolver=Dns([address]))
    with pytest.raises(DestinationNotAllowed) as literal:
        policy.vet(address, 443)
    assert literal.value.reason == reason
    with pytest.raises(DestinationNotAllowed) as named:
        policy.vet("hooks.partner.example", 443)
    assert named.value.reason == reason
    assert ipaddress.ip_address(named.value.address or "") == ipaddress.ip_address(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_a_globally_routable_address_is_allowed(address: str) -> None:
    policy = DestinationPolicy(resolver=Dns([address]))
    assert policy.vet("hooks.partner.example", 443) == (ipaddress.ip_address(address),)


def test_loopback_is_allowed_only_with_the_opt_in() -> None:
    assert DestinationPolicy(allow_loopback=True).vet("127.0.0.1", 8080)
    assert DestinationPolicy(allow_loopback=True).vet("::ffff:127.0.0.1", 8080)
    with pytest.raises(DestinationNotAllowed, match="loopback"):
        DestinationPolicy().vet("127.0.0.1", 8080)
    with pytest.raises(DestinationNotAllowed, match="private"):
        DestinationPolicy(allow_loopback=True).vet("10.0.0.1", 443)  # only loopback opens
    assert DestinationPolicy.from_environment({ALLOW_LOOPBACK_ENV: "1"}).allow_loopback
    assert not DestinationPolicy.from_environment({ALLOW_LOOPBACK_ENV: "true"}).allow_loopback
    assert not DestinationPolicy.from_environment({}).allow_loopback
    production = {ALLOW_LOOPBACK_ENV: "1", "FORECOURT_ENVIRONMENT": "production"}
    assert not DestinationPolicy.from_environment(production).allow_loopback


def test_a_name_with_one_internal_answer_among_public_ones_is_refused() -> None:
    policy = DestinationPolicy(resolver=Dns(["93.184.215.14", "10.0.0.7"]))
    with pytest.raises(DestinationNotAllowed) as refused:
        policy.vet("hooks.partner.example", 443)
    assert (refused.value.reason, refused.value.address) == ("private", "10.0.0.7")


def test_a_name_that_does_not_resolve_is_unresolvable_not_allowed() -> None:
    with pytest.raises(DestinationUnresolvable):
        DestinationPolicy(resolver=Dns()).vet("hooks.partner.example", 443)


class Dialled(httpcore.ConnectError):
    """Raised by the recording stream once TLS would start: nothing leaves the machine."""


class RecordingBackend(httpcore.NetworkBackend):
    """The socket layer under the vetting: records what is dialled and the TLS server name."""

    def __init__(self) -> None:
        self.dialled: list[tuple[str, int]] = []
        self.server_names: list[str | None] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        self.dialled.append((host, port))
        return _RecordingStream(self)


class _RecordingStream(httpcore.NetworkStream):
    def __init__(self, backend: RecordingBackend) -> None:
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise Dialled("not connected")

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        raise Dialled("not connected")

    def close(self) -> None:
        return None

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._backend.server_names.append(server_hostname)
        raise Dialled("stopped before the handshake")


def test_rebinding_the_vetted_address_is_dialled_and_a_later_private_answer_is_refused() -> None:
    """The resolver answers public, then the metadata address: the first connection goes to
    the public address it vetted (one lookup, TLS named after the host); the next connection
    looks up again and is refused before any socket is opened."""
    dns = Dns(["93.184.215.14"], ["169.254.169.254"])
    backend = RecordingBackend()
    client = httpx.Client(
        transport=VettingTransport(DestinationPolicy(resolver=dns), inner=backend)
    )
    with pytest.raises(httpx.ConnectError):
        client.post("https://hooks.partner.example/in", content=b"{}")
    assert dns.lookups == [("hooks.partner.example", 443)]
    assert backend.dialled == [("93.184.215.14", 443)]
    assert backend.server_names == ["hooks.partner.example"]
    with pytest.raises(DestinationNotAllowed) as refused:
        client.post("https://hooks.partner.example/in", content=b"{}")
    assert (refused.value.reason, refused.value.address) == ("link_local", "169.254.169.254")
    assert len(dns.lookups) == 2 and backend.dialled == [("93.184.215.14", 443)]
    client.close()


def _certificate(tmp: Path, name: str) -> tuple[Path, Path, x509.Certificate]:
    """A self-signed certificate for ``name`` (it is its own CA), as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, Path, list[str | None]]]:
    """A TLS receiver on 127.0.0.1 presenting a certificate for ``hooks.partner.example``;
    yields its port, the certificate (to trust) and the SNI names it was asked for."""
    cert_path, key_path, _cert = _certificate(tmp_path, "hooks.partner.example")
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    def remember(_sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: Any) -> None:
        names.append(name)

    context.sni_callback = remember

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert_path, names
    server.shutdown()
    server.server_close()
    thread.join()


def test_tls_verifies_the_host_name_while_the_vetted_address_is_dialled(
    tls_receiver: tuple[int, Path, list[str | None]], tmp_path: Path
) -> None:
    port, cert_path, names = tls_receiver
    trusted = ssl.create_default_context(cafile=str(cert_path))
    policy = DestinationPolicy(allow_loopback=True, resolver=Dns(["127.0.0.1"]))
    with httpx.Client(transport=VettingTransport(policy, ssl_context=trusted)) as client:
        answer = client.post(f"https://hooks.partner.example:{port}/in", content=b"{}")
        assert answer.status_code == 204
        assert names == ["hooks.partner.example"]
        # The same receiver reached under a name its certificate does not carry is refused.
        other = DestinationPolicy(allow_loopback=True, resolver=Dns(["127.0.0.1"]))
        with (
            httpx.Client(transport=VettingTransport(other, ssl_context=trusted)) as wrong,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            wrong.post(f"https://crm.other.example:{port}/in", content=b"{}")
