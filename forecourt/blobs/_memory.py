"""An in-memory :class:`~forecourt.blobs.BlobStore` for unit tests and simulations.

It honours the same contract as :class:`~forecourt.blobs.FileBlobStore` (the contract tests run
on both), so code tested against it behaves the same on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from forecourt.blobs._digest import BlobRef, validate_sha256
from forecourt.blobs._errors import BlobNotFound, SizeMismatch
from forecourt.blobs._store import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_BLOB_SIZE, Intake, check_bounds


class MemoryBlobStore:
    """Blobs held as ``bytes`` in a dict keyed by digest."""

    def __init__(self, *, max_blob_size: int = DEFAULT_MAX_BLOB_SIZE) -> None:
        if max_blob_size <= 0:
            raise ValueError(f"max_blob_size must be > 0, got {max_blob_size}")
        self._max_blob_size = max_blob_size
        self._blobs: dict[str, bytes] = {}

    @property
    def max_blob_size(self) -> int:
        return self._max_blob_size

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> BlobRef:
        intake = Intake(self._max_blob_size, expected_sha256, expected_size)
        intake.check_declared_size()
        if intake.expected_sha256 is not None and intake.expected_sha256 in self._blobs:
            ref = self.stat(intake.expected_sha256)
            if expected_size is not None and ref.size != expected_size:
                raise SizeMismatch(expected_size, ref.size)
            return ref
        parts: list[bytes] = []
        for chunk in chunks:
            intake.feed(chunk)
            parts.append(bytes(chunk))
        ref = intake.finish()
        self._blobs.setdefault(ref.sha256, b"".join(parts))
        return ref

    def open(
        self,
        sha256: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        data = self._get(sha256)
        stop = check_bounds(start, end, len(data))
        view = memoryview(data)[start:stop]
        return (bytes(view[i : i + chunk_size]) for i in range(0, len(view), chunk_size))

    def stat(self, sha256: str) -> BlobRef:
        return BlobRef(sha256, len(self._get(sha256)))

    def exists(self, sha256: str) -> bool:
        return validate_sha256(sha256) in self._blobs

    def delete(self, sha256: str) -> None:
        self._get(sha256)
        del self._blobs[sha256]

    def iter(self) -> Iterator[BlobRef]:
        return iter([BlobRef(sha, len(data)) for sha, data in self._blobs.items()])

    def _get(self, sha256: str) -> bytes:
        try:
            return self._blobs[validate_sha256(sha256)]
        except KeyError:
            raise BlobNotFound(sha256) from None
