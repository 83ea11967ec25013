"""Everything a request handler needs, built once per app by ``create_app`` (no globals).

The caches here hold only what is derived from immutable or versioned data (decoded catalog,
decoded profile versions, verified certificate chains per CRL), so each one is safe to share
between the requests of one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from forecourt.blobs import BlobStore
from forecourt.cloud.catalog.service import CatalogCache
from forecourt.cloud.compliance.service import ProfileCache
from forecourt.cloud.config import CloudConfig
from forecourt.cloud.db import Database
from forecourt.cloud.signing import BundleSigner
from forecourt.cloud.verified import VerifiedDealerCache


@dataclass
class CloudContext:
    config: CloudConfig
    db: Database
    blobs: BlobStore
    signer: BundleSigner
    catalog: CatalogCache = field(default_factory=CatalogCache)
    profiles: ProfileCache = field(default_factory=ProfileCache)
    verified_dealers: VerifiedDealerCache = field(init=False)

    def __post_init__(self) -> None:
        self.verified_dealers = VerifiedDealerCache(
            self.config.oem_root, self.config.oem_intermediates
        )


def get_context(request: Request) -> CloudContext:
    context: CloudContext = request.app.state.context
    return context
