"""The edge keeps the issuing CA's CRL it carries to cars fresh from the cloud.

Cars learn revocations only from testers: after 0x29 the edge writes the CRL it holds
(``crl.pem`` beside its TLS certificate, :func:`forecourt.edge.wiring.dealer_crl`) to DID FD07.
:class:`CrlRefresher` replaces that file with the cloud's current CRL (``GET /v1/trust/crl``), so
a revocation published after the edge was set up reaches every car this edge serves next.

The cloud is not trusted for the CRL's content: the CRL proves itself. A fetched CRL replaces
the held one only if

* it is a complete X.509 CRL (no delta CRL) of at most ``MAX_CRL_BYTES`` (``malformed``);
* it names the issuing CA of the dealer's own chain as issuer (``foreign_issuer``) and that CA
  signed it (``bad_signature``): the issuing CA is the intermediate in the dealer's TLS bundle,
  itself checked against the pinned OEM root;
* its nextUpdate is not past at the edge's clock (``expired``): the car would take it, but an
  edge that can only fetch an expired CRL is told so, and keeps the one it has;
* it is newer than the one held (``not_newer``): a higher cRLNumber, else a later thisUpdate
  (:func:`forecourt.trust.crl_reload.supersedes`, the car's order). An older CRL would
  un-revoke certificates; the car would refuse it too (0x22), but the edge would then carry it
  to every car and never the newer one.

The root's CRL of revoked issuing CAs (``root-crl.pem`` beside ``crl.pem``) is refreshed by a
second :class:`CrlRefresher` from ``GET /v1/trust/root-crl`` by the same rules, with the pinned
OEM root as the issuer it must name and be signed by; the connector writes it to cars after the
issuing CA's CRL. A cloud that holds no root CRL (none was ever published) is the normal case
and changes nothing quietly.

Every refusal is logged (``crl_refresh_refused`` with the reason above) and leaves the held file
untouched. An accepted CRL is written atomically (a temporary file in the same directory,
``fsync``, ``os.replace``, then the directory ``fsync``): a crash leaves the old file or the new
one, never half of one. The car connector reads the file at each session, so the next car gets
it without a restart.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.edge.cloud_client import MAX_CRL_BYTES, CloudClient, CloudRefused
from forecourt.logging import get_logger
from forecourt.trust.crl_reload import crl_etag, crl_number, supersedes

__all__ = [
    "CrlOutcome",
    "CrlRefresh",
    "CrlRefresher",
    "CrlRefused",
    "RefusalReason",
    "check_crl",
    "write_atomically",
]

_log = get_logger("edge.crl")


class RefusalReason(StrEnum):
    """Why a fetched CRL was not taken (the module docstring says when each applies)."""

    MALFORMED = "malformed"
    FOREIGN_ISSUER = "foreign_issuer"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_NEWER = "not_newer"
    CLOUD_REFUSED = "cloud_refused"
    """The cloud answered with a refusal (``crl_unavailable``: it holds no CRL)."""


class CrlRefused(Exception):
    """A fetched CRL is not taken; the held one stays."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class CrlOutcome(StrEnum):
    UPDATED = "updated"
    """A newer CRL was written."""
    UNCHANGED = "unchanged"
    """The cloud's CRL is the one held (``304``, or the same bytes)."""
    REFUSED = "refused"
    """The cloud's CRL was refused; the held one stays (``reason``)."""


@dataclass(frozen=True, slots=True)
class CrlRefresh:
    """What one refresh did: the numbers before and after (``None``: no CRL, or none carried)."""

    outcome: CrlOutcome
    held_number: int | None
    """The cRLNumber of the CRL held after the refresh."""
    previous_number: int | None
    """The cRLNumber held before."""
    fetched_number: int | None = None
    reason: RefusalReason | None = None
    detail: str = ""

    def describe(self) -> str:
        """One line for an operator (the CLI prints it)."""
        if self.outcome is CrlOutcome.UPDATED:
            return f"CRL updated: number {self.previous_number} -> {self.held_number}"
        if self.outcome is CrlOutcome.UNCHANGED:
            return f"CRL unchanged: number {self.held_number} is the cloud's current one"
        reason = self.reason.value if self.reason else "refused"
        return f"CRL refused ({reason}): {self.detail}; still holding number {self.held_number}"


def _parse(data: bytes) -> x509.CertificateRevocationList:
    if not 0 < len(data) <= MAX_CRL_BYTES:
        raise CrlRefused(RefusalReason.MALFORMED, f"{len(data)} bytes (at most {MAX_CRL_BYTES})")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        _ = (crl.issuer, crl.extensions, crl.last_update_utc)  # decoded lazily: decode now
        for revoked in crl:
            _ = revoked.extensions
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CrlRefused(RefusalReason.MALFORMED, f"not an X.509 CRL: {exc}") from exc
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        return crl
    raise CrlRefused(RefusalReason.MALFORMED, "a delta CRL; the complete CRL is needed")


def _stamp(crl: x509.CertificateRevocationList) -> str:
    return f"number {crl_number(crl)} of {crl.last_update_utc:%Y-%m-%dT%H:%M:%SZ}"


def check_crl(
    data: bytes,
    issuer: x509.Certificate,
    held: x509.CertificateRevocationList | None,
    now: datetime,
) -> x509.CertificateRevocationList:
    """The CRL in ``data`` if it may replace ``held`` (module docstring), else
    :class:`CrlRefused`. Pure: nothing is read or written."""
    crl = _parse(data)
    if crl.issuer != issuer.subject:
        raise CrlRefused(
            RefusalReason.FOREIGN_ISSUER,
            f"CRL of {crl.issuer.rfc4514_string()}, not of {issuer.subject.rfc4514_string()}",
        )
    key = issuer.public_key()
    if not isinstance(
        key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
    ) or not crl.is_signature_valid(key):
        raise CrlRefused(
            RefusalReason.BAD_SIGNATURE, f"not signed by {issuer.subject.rfc4514_string()}"
        )
    next_update = crl.next_update_utc
    if next_update is not None and next_update < now:
        raise CrlRefused(
            RefusalReason.EXPIRED,
            f"{_stamp(crl)} expired at {next_update:%Y-%m-%dT%H:%M:%SZ}",
        )
    if held is not None and held.issuer == crl.issuer and not supersedes(crl, held):
        raise CrlRefused(
            RefusalReason.NOT_NEWER, f"fetched {_stamp(crl)}, held {_stamp(held)}: not newer"
        )
    return crl


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old file or the new, whole one."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # a CRL is public; mkstemp makes 0600
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)


class CrlRefresher:
    """Fetches the cloud's CRL and replaces ``path`` with it when :func:`check_crl` allows.

    ``issuer`` is the issuing CA certificate the dealer's chain holds; ``clock`` the edge's.
    For the root's CRL, ``issuer`` is the pinned root, ``fetch`` the cloud's
    ``fetch_root_crl`` and ``optional`` says that a cloud holding none, while the edge holds
    none either, is no refusal.
    A cloud refusal (no CRL there) is an outcome like a refused CRL; an unreachable cloud
    (:class:`forecourt.edge.cloud_client.CloudUnreachable`) propagates: the caller decides
    whether it is worth a warning and a retry (the background loop) or an exit code (the CLI).
    """

    def __init__(
        self,
        cloud: CloudClient,
        path: Path,
        issuer: x509.Certificate,
        clock: Callable[[], datetime],
        *,
        fetch: Callable[[str | None], bytes | None] | None = None,
        optional: bool = False,
    ) -> None:
        self._fetch = fetch or cloud.fetch_crl
        self._path = path
        self._issuer = issuer
        self._clock = clock
        self._optional = optional

    @property
    def path(self) -> Path:
        return self._path

    def _held(self) -> x509.CertificateRevocationList | None:
        """The CRL in the file; an unreadable one is logged and treated as none (the fetched
        CRL is still checked against the issuing CA before it replaces it)."""
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return x509.load_pem_x509_crl(data)
        except ValueError as exc:
            _log.warning("crl_held_unreadable", path=str(self._path), error=str(exc))
            return None

    def refresh(self) -> CrlRefresh:
        """One refresh: fetch (conditionally on the held CRL's entity tag), check, write."""
        held = self._held()
        held_number = None if held is None else crl_number(held)
        etag = None if held is None else crl_etag(held.public_bytes(Encoding.DER))
        try:
            data = self._fetch(etag)
        except CloudRefused as exc:
            if self._optional and held is None and "crl_unavailable" in exc.codes:
                return CrlRefresh(CrlOutcome.UNCHANGED, None, None)
            return self._refused(CrlRefused(RefusalReason.CLOUD_REFUSED, str(exc)), held_number)
        if data is None or (held is not None and data == held.public_bytes(Encoding.DER)):
            return CrlRefresh(CrlOutcome.UNCHANGED, held_number, held_number, held_number)
        try:
            crl = check_crl(data, self._issuer, held, self._clock())
        except CrlRefused as refused:
            return self._refused(refused, held_number)
        write_atomically(self._path, crl.public_bytes(Encoding.PEM))
        number = crl_number(crl)
        _log.info(
            "crl_refreshed",
            path=str(self._path),
            number=number,
            previous_number=held_number,
            this_update=crl.last_update_utc.isoformat(),
            revoked=len(list(crl)),
        )
        return CrlRefresh(CrlOutcome.UPDATED, number, held_number, number)

    def _refused(self, refused: CrlRefused, held_number: int | None) -> CrlRefresh:
        _log.warning(
            "crl_refresh_refused",
            path=str(self._path),
            reason=refused.reason.value,
            detail=refused.detail,
            held_number=held_number,
        )
        return CrlRefresh(
            CrlOutcome.REFUSED,
            held_number,
            held_number,
            reason=refused.reason,
            detail=refused.detail,
        )
