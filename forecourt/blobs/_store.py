"""The ``BlobStore`` contract: an immutable, content-addressed store of package bytes.

Invariants every implementation keeps (``tests/blobs/test_store_contract.py`` checks them on each):

* A blob is stored under the SHA-256 of its bytes, computed by the store while it reads the
  stream; a caller's claim is only ever compared against that, never believed.
* ``put`` is all or nothing: a refused or interrupted put leaves no blob and no temporary file.
* ``put`` is idempotent: storing the same bytes twice yields the same :class:`BlobRef`.
* A stored blob never changes; the only mutation is ``delete``, reserved for administrators
  (the HTTP router mounts it only behind a separate admin dependency).
* Reads stream in bounded chunks, so a multi-gigabyte map pack is never held in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from forecourt.blobs._digest import BlobRef, validate_sha256
from forecourt.blobs._errors import BlobTooLarge, DigestMismatch, InvalidRange, SizeMismatch

DEFAULT_MAX_BLOB_SIZE = 8 * 1024**3
"""8 GiB: larger than any map pack we expect, small enough to refuse a runaway upload."""

DEFAULT_CHUNK_SIZE = 256 * 1024


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed, immutable blob storage (filesystem, in-memory, later object storage)."""

    @property
    def max_blob_size(self) -> int:
        """The largest blob, in bytes, that ``put`` accepts."""
        ...

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> BlobRef:
        """Store the concatenation of ``chunks``; refuse it if it is not what was declared.

        Raises :class:`InvalidDigest` for a malformed ``expected_sha256``, and a
        :class:`BlobRejected` subclass (too large, size or digest mismatch) after discarding
        everything written.
        """
        ...

    def open(
        self, sha256: str, start: int = 0, end: int | None = None, *, chunk_size: int = ...
    ) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` of a blob (``end=None``: to the end).

        Raises :class:`BlobNotFound` or :class:`InvalidRange` at call time, before any byte.
        """
        ...

    def stat(self, sha256: str) -> BlobRef:
        """The reference (digest and size) of a stored blob, or :class:`BlobNotFound`."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None:
        """Remove a blob (administrators only), or raise :class:`BlobNotFound`."""
        ...

    def iter(self) -> Iterator[BlobRef]:
        """Every stored blob, in no particular order."""
        ...


class Intake:
    """Hashes and measures a stream as it is consumed, enforcing the size bound early.

    Shared by every store so that "what counts as the blob's identity" lives in one place.
    """

    def __init__(
        self, max_size: int, expected_sha256: str | None, expected_size: int | None
    ) -> None:
        self.max_size = max_size
        self.expected_sha256 = (
            validate_sha256(expected_sha256) if expected_sha256 is not None else None
        )
        if expected_size is not None and expected_size < 0:
            raise ValueError(f"expected_size must be >= 0, got {expected_size}")
        self.expected_size = expected_size
        self.size = 0
        self._hash = hashlib.sha256()

    def check_declared_size(self) -> None:
        """Refuse before reading a byte when the declared size is already over the bound."""
        if self.expected_size is not None and self.expected_size > self.max_size:
            raise BlobTooLarge(self.max_size, self.expected_size)

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise BlobTooLarge(self.max_size, self.size)
        if self.expected_size is not None and self.size > self.expected_size:
            raise SizeMismatch(self.expected_size, self.size)
        self._hash.update(chunk)

    def finish(self) -> BlobRef:
        """The reference of what was consumed, once it matches every declared property."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise SizeMismatch(self.expected_size, self.size)
        actual = self._hash.hexdigest()
        if self.expected_sha256 is not None and actual != self.expected_sha256:
            raise DigestMismatch(self.expected_sha256, actual)
        return BlobRef(actual, self.size)


def check_bounds(start: int, end: int | None, size: int) -> int:
    """Validate read bounds ``[start, end)`` against ``size``; return the resolved ``end``."""
    resolved = size if end is None else end
    if not 0 <= start <= resolved <= size:
        raise InvalidRange(start, end, size)
    return resolved
