"""Everything a request handler needs, built once per app by ``create_app`` (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from forecourt.blobs import BlobStore
from forecourt.cloud.catalog.service import CatalogCache
from forecourt.cloud.config import CloudConfig
from forecourt.cloud.db import Database
from forecourt.cloud.signing import BundleSigner


@dataclass
class CloudContext:
    config: CloudConfig
    db: Database
    blobs: BlobStore
    signer: BundleSigner
    catalog: CatalogCache = field(default_factory=CatalogCache)


def get_context(request: Request) -> CloudContext:
    context: CloudContext = request.app.state.context
    return context
