"""Adapters from ``forecourt.trust`` to the car's seams (see :mod:`forecourt.vehicle.seams`).

Until the trust layer offers the pieces, the car refuses: no bundle verifier means no activation,
no OEM PKI means no 0x29 authentication. Nothing here ever accepts by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from forecourt.vehicle.seams import (
    BundleVerifier,
    EcuCertificateIssuer,
    RefuseAllAuthenticator,
    RefuseAllVerifier,
    TesterAuthenticator,
)


@dataclass
class TrustServices:
    verifier: BundleVerifier = field(default_factory=RefuseAllVerifier)
    authenticator: TesterAuthenticator = field(default_factory=RefuseAllAuthenticator)
    issuer: EcuCertificateIssuer | None = None
    oem_root_pem: str = ""


def trust_services(data_dir: Path) -> TrustServices:
    """The trust layer's implementations for a car provisioned under ``data_dir``."""
    return TrustServices()
