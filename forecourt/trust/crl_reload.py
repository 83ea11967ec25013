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

**The root's CRL.** When ``root-crl.pem`` (:data:`ROOT_CRL_FILE`) lies beside the CRL file, the
context checks every CA of the client's path too (``VERIFY_CRL_CHECK_ALL``), so a dealer
certificate from an issuing CA the root revoked fails the handshake. That file is watched the
same way, with stricter rules, since nothing else checks it before OpenSSL relies on it: it must
be signed by a pinned root (``bad_signature``), current (``expired``: an expired CRL would fail
every handshake) and supersede the root CRL in force (``not_newer``). It may appear after the
listener started (then the one connection whose ClientHello brings it into force is refused
and the listener checks every CA from the next connection on, :meth:`CrlReloader._checks_every_ca`;
a connection accepted but not yet at its ClientHello at that instant is still checked against
the issuing CA's CRL only); at start an unusable one refuses to start (:class:`CrlInvalid`).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.logging import get_logger
from forecourt.trust.certificates import load_crl
from forecourt.trust.errors import CertificateFormatError, CrlInvalid

__all__ = [
    "ROOT_CRL_FILE",
    "CrlReloader",
    "FileVersion",
    "check_root_crl",
    "crl_etag",
    "crl_number",
    "file_version",
    "supersedes",
]

_log = get_logger("trust.crl_reload")

ROOT_CRL_FILE = "root-crl.pem"
"""The root's CRL of revoked issuing CAs, beside the issuing CA's ``crl.pem`` wherever both are
kept (the PKI directory, the cloud's, the edge's dealer TLS files)."""

ContextBuilder = Callable[[Path, bool], ssl.SSLContext]
"""Builds a complete server context whose CRLs are the file at the given path; the flag says
the file holds the root's CRL too, so every CA of a client's path must be checked."""

FileVersion = tuple[int, int, int, int]
"""What :func:`file_version` returns: device, inode, mtime (ns) and size."""


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


def check_root_crl(
    crl: x509.CertificateRevocationList,
    roots: Sequence[x509.Certificate],
    held: x509.CertificateRevocationList | None,
    now: datetime,
) -> None:
    """Refuse (:class:`CrlInvalid`) a root CRL that no pinned root in ``roots`` signed, that is
    past its nextUpdate at ``now``, or that does not supersede ``held``. Pure."""
    signer = next(
        (
            r
            for r in roots
            if r.subject == crl.issuer and crl.is_signature_valid(r.public_key())  # type: ignore[arg-type]
        ),
        None,
    )
    if signer is None:
        raise CrlInvalid(f"root CRL of {crl.issuer.rfc4514_string()} not signed by a pinned root")
    next_update = crl.next_update_utc
    if next_update is None or now > next_update:
        raise CrlInvalid(f"root CRL number {crl_number(crl)} expired at {next_update}")
    if held is not None and not supersedes(crl, held):
        raise CrlInvalid(
            f"root CRL number {crl_number(crl)} does not supersede number {crl_number(held)}"
        )


def file_version(path: Path) -> FileVersion | None:
    """What changes when the file is rewritten or replaced (``os.replace`` gives a new inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass
class _Watched:
    """One CRL file and the CRL from it that is in force."""

    path: Path
    seen: FileVersion | None
    held: x509.CertificateRevocationList | None


class CrlReloader:
    """Keeps the handshakes of one listener on the newest CRLs at ``path`` and, when there is
    one, at ``root-crl.pem`` beside it (module docstring).

    ``build`` makes a complete server context (certificate, key, CA, verify mode and flags, as
    the listening context) whose CRLs are the file it is given. ``roots`` are the pinned roots
    a root CRL must be signed by.
    """

    def __init__(
        self, path: Path, build: ContextBuilder, roots: Sequence[x509.Certificate] = ()
    ) -> None:
        self._build = build
        self._roots = tuple(roots)
        self._lock = threading.Lock()
        self._leaf = _Watched(path, file_version(path), load_crl(path.read_bytes()))
        root_path = path.with_name(ROOT_CRL_FILE)
        self._root = _Watched(root_path, file_version(root_path), None)
        if self._root.seen is not None:
            try:
                root_crl = load_crl(root_path.read_bytes())
                check_root_crl(root_crl, self._roots, None, datetime.now(UTC))
            except (OSError, CertificateFormatError, CrlInvalid) as exc:
                raise CrlInvalid(f"{root_path}: {exc}", path=str(root_path)) from exc
            self._root.held = root_crl
        self._current: ssl.SSLContext | None = None
        """The context handshakes switch to; ``None`` while the listening one is current."""
        self._listening: ssl.SSLContext | None = None

    def listening_context(self) -> ssl.SSLContext:
        """The context to listen with: the CRLs read at construction."""
        return self._context()

    def install(self, listening: ssl.SSLContext) -> None:
        """Become ``listening``'s ClientHello callback (it must have no other)."""
        if listening.sni_callback is not None:
            raise ValueError("the listening context already has an sni_callback")
        listening.sni_callback = self._on_client_hello
        self._listening = listening

    @property
    def number(self) -> int | None:
        """The cRLNumber of the issuing CA's CRL handshakes are checked against now."""
        return None if self._leaf.held is None else crl_number(self._leaf.held)

    @property
    def root_number(self) -> int | None:
        """The cRLNumber of the root CRL in force; ``None`` while there is none."""
        return None if self._root.held is None else crl_number(self._root.held)

    def _on_client_hello(
        self, connection: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None, _ctx: object
    ) -> int | None:
        current = self.current()
        if current is not None:
            connection.context = current
        if self._root.held is not None and not self._checks_every_ca():
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        return None

    def _checks_every_ca(self) -> bool:
        """Whether the listening context checks every CA of a path, turning that on when the
        first root CRL arrived after the listener started.

        OpenSSL copies the verify flags into a connection when it is created, before its
        ClientHello; switching the connection's context later changes the CRLs it is checked
        against but not those flags. So the connection that brings the first root CRL into
        force is refused (the client connects again) and later connections carry the flag."""
        listening = self._listening
        chain = ssl.VERIFY_CRL_CHECK_CHAIN  # includes VERIFY_CRL_CHECK_LEAF's bit
        if listening is None or listening.verify_flags & chain == chain:
            return True
        with self._lock:
            listening.verify_flags |= chain
        _log.warning("root_crl_enabled", path=str(self._root.path), number=self.root_number)
        return False

    def current(self) -> ssl.SSLContext | None:
        """The context with the newest CRLs, reloading them if a file changed; ``None`` while
        the listening context's own CRLs are still the newest."""
        leaf_key, root_key = file_version(self._leaf.path), file_version(self._root.path)
        with self._lock:
            changed, previous = False, self.number
            if leaf_key is not None and leaf_key != self._leaf.seen:
                self._leaf.seen = leaf_key
                changed |= self._reload_leaf()
            if root_key is not None and root_key != self._root.seen:
                self._root.seen = root_key
                changed |= self._reload_root()
            if changed:
                self._switch(previous)
            return self._current

    def _read(self, watched: _Watched) -> x509.CertificateRevocationList | None:
        try:
            crl = load_crl(watched.path.read_bytes())
        except (OSError, CertificateFormatError) as exc:
            self._refuse(watched, "unreadable", f"{type(exc).__name__}: {exc}")
            return None
        held = watched.held
        if held is not None and crl.public_bytes(Encoding.DER) == held.public_bytes(Encoding.DER):
            return None  # the same CRL rewritten
        return crl

    def _reload_leaf(self) -> bool:
        crl, held = self._read(self._leaf), self._leaf.held
        if crl is None or held is None:
            return False
        if crl.issuer != held.issuer:
            self._refuse(self._leaf, "foreign_issuer", f"CRL of {crl.issuer.rfc4514_string()}")
            return False
        if not supersedes(crl, held):
            self._refuse(
                self._leaf,
                "not_newer",
                f"CRL number {crl_number(crl)} of {crl.last_update_utc:%Y-%m-%dT%H:%M:%SZ} does "
                f"not supersede number {self.number} of "
                f"{held.last_update_utc:%Y-%m-%dT%H:%M:%SZ}",
            )
            return False
        self._leaf.held = crl
        return True

    def _reload_root(self) -> bool:
        crl = self._read(self._root)
        if crl is None:
            return False
        try:
            check_root_crl(crl, self._roots, self._root.held, datetime.now(UTC))
        except CrlInvalid as exc:
            self._refuse(self._root, "refused", str(exc))
            return False
        self._root.held = crl
        return True

    def _switch(self, previous: int | None) -> None:
        """Build the context of the CRLs now held; on failure keep the previous one."""
        try:
            context = self._context()
        except (OSError, ssl.SSLError) as exc:
            self._refuse(self._leaf, "context_failed", f"{type(exc).__name__}: {exc}")
            return
        self._current = context
        _log.info(
            "crl_reloaded",
            path=str(self._leaf.path),
            number=self.number,
            previous=previous,
            root_number=self.root_number,
        )

    def _context(self) -> ssl.SSLContext:
        """A context loaded from exactly the CRLs checked above (the files may change again)."""
        crls = [w.held for w in (self._leaf, self._root) if w.held is not None]
        with tempfile.TemporaryDirectory(prefix="forecourt-crl-") as directory:
            copy = Path(directory) / "crl.pem"
            copy.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in crls))
            return self._build(copy, self._root.held is not None)

    def _refuse(self, watched: _Watched, reason: str, detail: str) -> None:
        _log.warning(
            "crl_reload_refused",
            path=str(watched.path),
            reason=reason,
            detail=detail,
            number_in_force=None if watched.held is None else crl_number(watched.held),
        )
