"""What a cloud process is built from; :func:`forecourt.cloud.app.create_app` takes one of these.

Nothing here is read at import time: tests and the demo build several differently configured
clouds in one interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from forecourt.ledger.checkpoint import NoteSigner
from forecourt.trust._sslib import Metadata, Root
from forecourt.trust.issuer import RepositoryKeys


def utc_now() -> datetime:
    """The wall clock, timezone-aware (the default clock)."""
    return datetime.now(UTC)


KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest request body (bytes) the cloud reads, per kind of caller
    (:class:`forecourt.cloud.limits.RequestGuard` enforces them before the app runs)."""

    api: int = 1 * MIB
    """Callers with a client certificate or a bearer token (JSON APIs, feeds, event batches)."""
    anonymous: int = 256 * KIB
    """Callers with neither: only the auth-less routes can answer them anything but 401."""

    def __post_init__(self) -> None:
        if self.api <= 0 or self.anonymous <= 0:
            raise ValueError(f"body limits must be > 0, got {self}")


@dataclass(frozen=True)
class SigningKeys:
    """The director's and the image repository's role keys (online director, offline image)."""

    director: RepositoryKeys
    images: RepositoryKeys
    root_expires: datetime
    metadata_validity: timedelta = timedelta(hours=1)
    director_root: Metadata[Root] | None = None
    """The newest root metadata signed offline (``cloud init-keys``, ``cloud rotate-keys``);
    ``None``: root v1 signed here by ``director.root`` (tests, the demo)."""
    image_root: Metadata[Root] | None = None
    director_root_history: tuple[Metadata[Root], ...] = ()
    """The roots before ``director_root``, oldest first (v1 .. vN-1; empty before any
    rotation). Every bundle carries v2 .. vN so a car that pinned v1 walks to the newest root."""
    image_root_history: tuple[Metadata[Root], ...] = ()


@dataclass(frozen=True)
class CloudConfig:
    """Database, blob storage, signing keys, the OEM CA that dealer certificates chain to."""

    database_url: str
    signing: SigningKeys
    oem_root: x509.Certificate
    """The only trust anchor for dealer client certificates."""
    oem_intermediates: Sequence[x509.Certificate]
    """The issuing CA(s) between a dealer certificate and the root, issuer first."""
    crl: Callable[[], x509.CertificateRevocationList | None] = field(default=lambda: None)
    """The issuing CA's current CRL (read per request, so a newly published CRL applies)."""
    root_crl: Callable[[], x509.CertificateRevocationList | None] = field(default=lambda: None)
    """The root's CRL of revoked issuing CAs (``root-crl.pem``), read per request; served to
    edges for cars. ``None``: no root CRL published."""
    blob_dir: Path | None = None
    """Package blobs on disk; ``None`` keeps them in memory (tests)."""
    clock: Callable[[], datetime] = utc_now
    activation_validity: timedelta = timedelta(minutes=15)
    offline_validity: timedelta = timedelta(hours=72)
    ledger_origin: str = "forecourt.example/cloud-ledger"
    ledger_signer: NoteSigner | None = None
    """Checkpoint key of the central log; ``None`` generates one (development only)."""
    migrate: bool = True
    body_limits: BodyLimits = field(default_factory=BodyLimits)
