"""TLS with OEM certificates: ``ssl`` contexts for the cloud (server) and the edge (client).

Both sides require TLS 1.2 or later with forward-secret AEAD suites only, and verify the peer
against the OEM root (never the system trust store). The server demands a client certificate
(``CERT_REQUIRED``) and, given the issuing CA's CRL, refuses a revoked one during the handshake;
the cloud then reads the caller with :func:`forecourt.trust.certificates.dealer_identity` on
``getpeercert(binary_form=True)`` and re-checks it with ``verify_chain`` for the typed reason.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from forecourt.trust.crl_reload import CrlReloader

__all__ = [
    "PemBundlePaths",
    "client_ssl_context",
    "server_ssl_context",
    "write_pem_bundle",
]

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
"""TLS 1.2 suites: ECDHE key exchange and AEAD only (TLS 1.3 suites are all AEAD already)."""


@dataclass(frozen=True)
class PemBundlePaths:
    """The files uvicorn (``ssl_certfile``/``ssl_keyfile``/``ssl_ca_certs``) or httpx take."""

    cert: Path
    """The leaf followed by its intermediates."""
    key: Path
    """Unencrypted PKCS#8 private key, mode 0600."""
    ca: Path
    """The OEM root, the only trust anchor."""
    crl: Path | None = None


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pem_bundle(
    directory: Path,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    chain: list[x509.Certificate],
    root: x509.Certificate,
    *,
    crl: x509.CertificateRevocationList | None = None,
    name: str = "tls",
) -> PemBundlePaths:
    """Write ``<name>-cert.pem`` (leaf + chain), ``<name>-key.pem`` (0600), ``ca.pem``, CRL."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}-cert.pem"
    cert_path.write_bytes(_pem(cert) + b"".join(_pem(c) for c in chain))
    key_path = directory / f"{name}-key.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(_pem(root))
    crl_path = None
    if crl is not None:
        crl_path = directory / "crl.pem"
        crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return PemBundlePaths(cert_path, key_path, ca_path, crl_path)


def _base_context(purpose: ssl.Purpose, cert: Path, key: Path, ca: Path | bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(cert, key)
    if isinstance(ca, bytes):
        context.load_verify_locations(cadata=ca.decode("ascii"))
    else:
        context.load_verify_locations(cafile=ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def server_ssl_context(
    cert: Path,
    key: Path,
    client_ca_bundle: Path | bytes,
    crl: Path | None = None,
    *,
    client_certificate_optional: bool = False,
) -> ssl.SSLContext:
    """Server side of mutual TLS: a client certificate chaining to the OEM root is required.

    With ``crl`` (PEM of the issuing CA's CRL) a revoked client certificate fails the handshake;
    a newer CRL written to that file applies from the next handshake on, without a restart
    (:class:`forecourt.trust.crl_reload.CrlReloader`). A root CRL (``root-crl.pem``) beside it,
    signed by a root in ``client_ca_bundle``, makes the handshake refuse every certificate of an
    issuing CA it lists; an unusable one there refuses to build the context (``CrlInvalid``).
    ``client_certificate_optional`` lets a client without a certificate complete the handshake
    (``CERT_OPTIONAL``: one that presents a certificate is still verified, against the CRL too),
    for a listener that also serves token-authenticated callers; the application must then
    refuse certificate-only routes itself.
    """

    def build(crl_file: Path | None, every_ca: bool = False) -> ssl.SSLContext:
        context = _base_context(ssl.Purpose.CLIENT_AUTH, cert, key, client_ca_bundle)
        if client_certificate_optional:
            context.verify_mode = ssl.CERT_OPTIONAL
        if crl_file is not None:
            context.load_verify_locations(cafile=crl_file)
            context.verify_flags |= (
                ssl.VERIFY_CRL_CHECK_CHAIN if every_ca else ssl.VERIFY_CRL_CHECK_LEAF
            )
        return context

    if crl is None:
        return build(None)
    roots = (
        x509.load_pem_x509_certificates(client_ca_bundle)
        if isinstance(client_ca_bundle, bytes)
        else x509.load_pem_x509_certificates(client_ca_bundle.read_bytes())
    )
    reloader = CrlReloader(crl, build, roots)
    context = reloader.listening_context()
    reloader.install(context)
    return context


def client_ssl_context(cert: Path, key: Path, ca: Path | bytes) -> ssl.SSLContext:
    """Client side (the edge): present the dealer certificate, trust only the OEM root."""
    context = _base_context(ssl.Purpose.SERVER_AUTH, cert, key, ca)
    context.check_hostname = True
    return context
