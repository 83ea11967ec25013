"""Content-addressed package blobs: storage, HTTP serving with Range, resumable download.

Software packages (OS images, map packs, language packs, compliance parameter sets) are named by
the SHA-256 of their bytes. The cloud stores and serves them; the edge downloads them resumably
into its cache and re-verifies them before anything reaches a car.

* :class:`BlobStore` — the storage contract; :class:`FileBlobStore` and :class:`MemoryBlobStore`
  honour it.
* :func:`blob_router` — FastAPI router for ``GET``/``HEAD``/``PUT /v1/packages/{sha256}``.
* :class:`ResumableDownloader` — httpx client side, ``Range``/``If-Range`` resume, verification.

The exception tree is drawn in :mod:`forecourt.blobs._errors`.
"""

from forecourt.blobs._digest import EMPTY_SHA256, BlobRef, validate_sha256
from forecourt.blobs._download import (
    DownloadResult,
    ProgressCallback,
    ResumableDownloader,
    RetryPolicy,
)
from forecourt.blobs._errors import (
    BlobError,
    BlobNotFound,
    BlobRejected,
    BlobTooLarge,
    DigestMismatch,
    DownloadError,
    DownloadIntegrityError,
    DownloadRefused,
    InvalidDigest,
    InvalidRange,
    RetriesExhausted,
    SizeMismatch,
)
from forecourt.blobs._fs import FileBlobStore
from forecourt.blobs._http import blob_router, representation_headers
from forecourt.blobs._memory import MemoryBlobStore
from forecourt.blobs._ranges import ByteRange, RangeNotSatisfiable, if_range_matches, parse_range
from forecourt.blobs._store import DEFAULT_MAX_BLOB_SIZE, BlobStore

__all__ = [
    "DEFAULT_MAX_BLOB_SIZE",
    "EMPTY_SHA256",
    "BlobError",
    "BlobNotFound",
    "BlobRef",
    "BlobRejected",
    "BlobStore",
    "BlobTooLarge",
    "ByteRange",
    "DigestMismatch",
    "DownloadError",
    "DownloadIntegrityError",
    "DownloadRefused",
    "DownloadResult",
    "FileBlobStore",
    "InvalidDigest",
    "InvalidRange",
    "MemoryBlobStore",
    "ProgressCallback",
    "RangeNotSatisfiable",
    "ResumableDownloader",
    "RetriesExhausted",
    "RetryPolicy",
    "SizeMismatch",
    "blob_router",
    "if_range_matches",
    "parse_range",
    "representation_headers",
    "validate_sha256",
]
