"""The CRLs the cloud's per-request checks and trust routes read: files, parsed once per change.

``cloud serve`` takes the issuing CA's CRL from ``pki/crl.pem`` and the root's CRL of issuing CAs
from ``pki/root-crl.pem``. Every dealer request is checked against both
(:func:`forecourt.cloud.auth.authenticate_dealer`), so reading and parsing the files on every
request would spend CPU for nothing: a ``stat`` tells a new publication apart, and the file is
parsed only then.

A new file is taken only when it is a later CRL than the one held, by the order the handshake
and the cars apply (:func:`forecourt.trust.crl_reload.supersedes`); a root CRL must moreover be
signed by a pinned root and current (:func:`forecourt.trust.crl_reload.check_root_crl`). Anything
else (unreadable, older, forged, expired) is logged once per file version and the CRL held stays
in force: a bad write can never drop a revocation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from forecourt.logging import get_logger
from forecourt.trust.certificates import load_crl
from forecourt.trust.crl_reload import (
    FileVersion,
    check_root_crl,
    crl_number,
    file_version,
    supersedes,
)
from forecourt.trust.errors import CertificateFormatError, CrlInvalid

__all__ = ["CrlFile"]

_log = get_logger("cloud.crl_files")


class CrlFile:
    """A CRL file as a ``CloudConfig.crl`` / ``root_crl`` callable: the newest acceptable CRL.

    ``roots`` given: the file holds the root's CRL, which one of them must have signed and which
    must be current when read. Thread-safe: requests call it from the thread pool.
    """

    def __init__(
        self,
        path: Path,
        *,
        roots: Sequence[x509.Certificate] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._path = path
        self._roots = tuple(roots)
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: FileVersion | None = None
        self._held: x509.CertificateRevocationList | None = None

    def __call__(self) -> x509.CertificateRevocationList | None:
        version = file_version(self._path)
        with self._lock:
            if version is None or version == self._seen:
                return self._held
            self._seen = version
            candidate = self._read()
            if candidate is not None:
                self._held = candidate
            return self._held

    def _read(self) -> x509.CertificateRevocationList | None:
        """The file's CRL if it may replace the one held, else None (refusal logged)."""
        try:
            crl = load_crl(self._path.read_bytes())
        except (OSError, CertificateFormatError) as exc:
            self._refuse("unreadable", f"{type(exc).__name__}: {exc}")
            return None
        held = self._held
        if held is not None and crl.tbs_certlist_bytes == held.tbs_certlist_bytes:
            return None  # the same CRL written again
        if self._roots:
            try:
                check_root_crl(crl, self._roots, held, self._clock())
            except CrlInvalid as exc:
                self._refuse("refused", str(exc))
                return None
            return crl
        if held is not None and crl.issuer != held.issuer:
            self._refuse("foreign_issuer", f"CRL of {crl.issuer.rfc4514_string()}")
            return None
        if held is not None and not supersedes(crl, held):
            self._refuse(
                "not_newer",
                f"CRL number {crl_number(crl)} does not supersede number {crl_number(held)}",
            )
            return None
        return crl

    def _refuse(self, reason: str, detail: str) -> None:
        _log.warning(
            "crl_file_refused",
            path=str(self._path),
            kind="root" if self._roots else "issuing",
            reason=reason,
            detail=detail,
            kept=crl_number(self._held) if self._held is not None else None,
        )
