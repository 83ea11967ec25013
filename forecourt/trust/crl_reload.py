"""A TLS listener that checks client certificates against the issuing CA's newest CRL.

The listener's ``SSLContext`` loads the CRL file once. Publishing a revocation rewrites that
file; without this module the handshake would keep accepting the revoked certificate until a
restart (the application's per-request check catches it, but only after the connection is up).

:class:`CrlReloader` keeps the context current without a restart. It is the listening context's
``sni_callback``, which OpenSSL runs on every ClientHello (with or without SNI), before the client
certificate is verified. The callback ``stat``\\ s the CRL file (one system call; a handshake costs
far more) and, when the file changed and holds a CRL that supersedes the one in force, builds a
fresh context from the new CRL; from then on every handshake is switched to that context
(``SSLObject.context``), whose certificate store OpenSSL verifies the client against.

Why a fresh context rather than ``load_verify_locations`` on the live one: OpenSSL 3 (checked
with 3.0) keeps every CRL added to a store and, of two CRLs of one issuer, uses the one with the
later thisUpdate; when both carry the same thisUpdate (two publications within one second, as a
revocation script easily does) the older one may stay in force. A store that only ever holds the
newest CRL has no such tie, and does not grow with every publication.

The order between two CRLs (:func:`supersedes`) and a CRL's entity tag (:func:`crl_etag`) are
defined here once for the listener, the cloud's ``GET /v1/trust/crl`` and the edge's refresh.

What the file must hold to be taken (anything else is logged and the CRL in force is kept):

* a complete X.509 CRL (PEM or DER), of the issuer of the CRL in force;
* newer than it: a higher cRLNumber (RFC 5280 §5.2.3), or, when either lacks one, a later
  thisUpdate (:func:`supersedes`, the order the car applies too,
  :mod:`forecourt.vehicle.revocation`). An older CRL written back cannot un-revoke anyone.

The signature is not checked here (the listener does not hold the issuing CA certificate; the
client presents it): OpenSSL checks it at each handshake, and the file is the cloud's own
publication (``OemPki.publish_crl``). Resumed TLS sessions skip client certificate verification
whatever the CRL; the application's per-request check (:mod:`forecourt.cloud.auth`) covers them.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.logging import get_logger
from forecourt.trust.certificates import load_crl
from forecourt.trust.errors import CertificateFormatError

__all__ = ["CrlReloader", "crl_etag", "crl_number", "supersedes"]

_log = get_logger("trust.crl_reload")

ContextBuilder = Callable[[Path], ssl.SSLContext]
"""Builds a complete server context whose CRL is the file at the given path."""

_FileKey = tuple[int, int, int, int]


def crl_etag(der: bytes) -> str:
    """A CRL's HTTP entity tag: the SHA-256 of its DER, quoted (RFC 9110 §8.8.3). The cloud
    serves it with the CRL and the edge computes it of the CRL it holds, to ask only for
    another one (``If-None-Match``)."""
    return f'"{hashlib.sha256(der).hexdigest()}"'


def crl_number(crl: x509.CertificateRevocationList) -> int | None:
    """The CRL's cRLNumber extension (RFC 5280 §5.2.3), ``None`` when it carries none."""
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def supersedes(new: x509.CertificateRevocationList, held: x509.CertificateRevocationList) -> bool:
    """Whether ``new`` is a later CRL than ``held`` (same issuer assumed): a higher cRLNumber,
    or, when either has none, a later thisUpdate. An equal one does not supersede."""
    new_number, held_number = crl_number(new), crl_number(held)
    if new_number is not None and held_number is not None:
        return new_number > held_number
    return new.last_update_utc > held.last_update_utc


def _file_key(path: Path) -> _FileKey | None:
    """What changes when the file is rewritten or replaced (``os.replace`` gives a new inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class CrlReloader:
    """Keeps the handshakes of one listener on the newest CRL at ``path`` (module docstring).

    ``build`` makes a complete server context (certificate, key, CA, verify mode and flags, as
    the listening context) whose CRL is the file it is given.
    """

    def __init__(self, path: Path, build: ContextBuilder) -> None:
        self._path = path
        self._build = build
        self._lock = threading.Lock()
        self._seen = _file_key(path)
        self._held = load_crl(path.read_bytes())
        self._current: ssl.SSLContext | None = None
        """The context handshakes switch to; ``None`` while the listening one is current."""

    def install(self, listening: ssl.SSLContext) -> None:
        """Become ``listening``'s ClientHello callback (it must have no other)."""
        if listening.sni_callback is not None:
            raise ValueError("the listening context already has an sni_callback")
        listening.sni_callback = self._on_client_hello

    @property
    def number(self) -> int | None:
        """The cRLNumber of the CRL handshakes are checked against now."""
        return crl_number(self._held)

    def _on_client_hello(
        self, connection: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None, _ctx: object
    ) -> None:
        current = self.current()
        if current is not None:
            connection.context = current

    def current(self) -> ssl.SSLContext | None:
        """The context with the newest CRL, reloading it if the file changed; ``None`` while
        the listening context's own CRL is still the newest."""
        key = _file_key(self._path)
        with self._lock:
            if key is not None and key != self._seen:
                self._seen = key
                self._reload()
            return self._current

    def _reload(self) -> None:
        try:
            data = self._path.read_bytes()
            crl = load_crl(data)
        except (OSError, CertificateFormatError) as exc:
            self._refuse("unreadable", f"{type(exc).__name__}: {exc}")
            return
        if crl.public_bytes(Encoding.DER) == self._held.public_bytes(Encoding.DER):
            return  # the same CRL rewritten
        if crl.issuer != self._held.issuer:
            self._refuse("foreign_issuer", f"CRL of {crl.issuer.rfc4514_string()}")
            return
        if not supersedes(crl, self._held):
            self._refuse(
                "not_newer",
                f"CRL number {crl_number(crl)} of {crl.last_update_utc:%Y-%m-%dT%H:%M:%SZ} does "
                f"not supersede number {self.number} of "
                f"{self._held.last_update_utc:%Y-%m-%dT%H:%M:%SZ}",
            )
            return
        try:
            context = self._context_for(crl)
        except (OSError, ssl.SSLError) as exc:
            self._refuse("context_failed", f"{type(exc).__name__}: {exc}")
            return
        previous = self.number
        self._held, self._current = crl, context
        _log.info("crl_reloaded", path=str(self._path), number=self.number, previous=previous)

    def _context_for(self, crl: x509.CertificateRevocationList) -> ssl.SSLContext:
        """A context loaded from exactly the CRL checked above (the file may change again)."""
        with tempfile.TemporaryDirectory(prefix="forecourt-crl-") as directory:
            copy = Path(directory) / "crl.pem"
            copy.write_bytes(crl.public_bytes(Encoding.PEM))
            return self._build(copy)

    def _refuse(self, reason: str, detail: str) -> None:
        _log.warning(
            "crl_reload_refused",
            path=str(self._path),
            reason=reason,
            detail=detail,
            number_in_force=self.number,
        )
