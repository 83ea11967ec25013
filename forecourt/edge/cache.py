"""The edge's package cache: fetched once from the cloud, verified every time a car is served.

A dealer box holds the OS images, map packs and parameter sets its cars need, within a disk budget.
Invariants:

* Nothing reaches a car unverified. :meth:`PackageCache.ensure` re-hashes a cached package before
  declaring it present, and :meth:`PackageCache.open_for_vehicle` hashes the very file handle it
  then returns, so a file corrupted or replaced on disk is detected, removed and (on the next
  ``ensure``) fetched again, never served.
* Downloads are resumable: an interrupted fetch keeps its ``.part`` file in the store's staging
  directory and the next ``ensure`` asks only for the missing bytes.
* Least recently used packages are evicted when the total exceeds the budget; a package being
  streamed to a car is never evicted. The use time is the blob file's mtime, so the LRU order
  survives a restart without a database.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from forecourt.blobs import (
    BlobError,
    BlobNotFound,
    BlobRef,
    FileBlobStore,
    ProgressCallback,
    ResumableDownloader,
    validate_sha256,
)
from forecourt.logging import get_logger

_log = get_logger("edge.cache")
_HASH_CHUNK = 1024 * 1024


class PackageCorrupted(BlobError):
    """A cached package no longer hashes to its name; it has been removed from the cache."""

    code = "package_corrupted"

    def __init__(self, sha256: str, actual: str) -> None:
        self.sha256 = sha256
        self.actual = actual
        super().__init__(f"cached package {sha256} hashes to {actual}; removed")


class PackageTooLargeForCache(BlobError):
    """A package bigger than the whole cache budget; refused before any byte is fetched."""

    code = "package_too_large_for_cache"

    def __init__(self, ref: BlobRef, budget_bytes: int) -> None:
        self.ref = ref
        self.budget_bytes = budget_bytes
        super().__init__(
            f"package {ref.sha256} is {ref.size} bytes, the cache budget is {budget_bytes}"
        )


@dataclass(frozen=True, slots=True)
class CacheFreshness:
    """What the edge self-check reports about its package cache."""

    checked_at: datetime
    packages: int
    bytes_used: int
    budget_bytes: int
    partial_downloads: int
    oldest_use: datetime | None
    newest_use: datetime | None
    missing: tuple[str, ...]
    """Digests of the ``wanted`` packages that are not cached (a car could not be served now)."""
    hits: int
    misses: int
    evictions: int
    corruptions_detected: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PackageCache:
    """Verified, size-bounded package cache over a :class:`~forecourt.blobs.FileBlobStore`."""

    def __init__(
        self,
        root: Path,
        *,
        budget_bytes: int,
        downloader: ResumableDownloader,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if budget_bytes <= 0:
            raise ValueError(f"budget_bytes must be > 0, got {budget_bytes}")
        self.store = FileBlobStore(root, max_blob_size=budget_bytes)
        self.budget_bytes = budget_bytes
        self._downloader = downloader
        self._clock = clock
        self._lock = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._pins: dict[str, int] = {}
        self._stats: Counter[str] = Counter()

    def ensure(
        self, ref: BlobRef, source: str, *, progress: ProgressCallback | None = None
    ) -> Path:
        """Make ``ref`` present and verified, downloading it from ``source`` (a URL) if needed.

        Returns the path of the verified file. Raises :class:`PackageTooLargeForCache` without
        any network traffic, or a :class:`~forecourt.blobs.DownloadError`.
        """
        if ref.size > self.budget_bytes:
            _log.warning("package_refused", sha256=ref.sha256, size=ref.size, reason="budget")
            raise PackageTooLargeForCache(ref, self.budget_bytes)
        with self._fetch_lock(ref.sha256):
            if self.store.exists(ref.sha256) and self._verify_cached(ref.sha256):
                self._count("hits")
                self._touch(ref.sha256)
                return self.store.path_of(ref.sha256)
            self._count("misses")
            staged = self.store.staging_dir / ref.sha256
            self._downloader.download(source, staged, ref, progress=progress)
            self.store.import_file(staged, ref)
            self._touch(ref.sha256)
            _log.info("package_cached", sha256=ref.sha256, size=ref.size)
        self.evict_to_budget(keep=ref.sha256)
        return self.store.path_of(ref.sha256)

    @contextmanager
    def open_for_vehicle(self, sha256: str) -> Iterator[BinaryIO]:
        """Open a cached package for transfer to a car, verified through the returned handle.

        The hash is computed over the same open file that is handed out, so a swap of the file
        between check and use cannot slip past. Raises :class:`~forecourt.blobs.BlobNotFound`
        or :class:`PackageCorrupted` (after removing the bad file).
        """
        path = self.store.path_of(validate_sha256(sha256))
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        with handle:
            actual = _sha256_of(handle)
            if actual != sha256:
                self._discard_corrupt(sha256, actual)
                raise PackageCorrupted(sha256, actual)
            handle.seek(0)
            self._pin(sha256, +1)
            try:
                self._touch(sha256)
                yield handle
            finally:
                self._pin(sha256, -1)

    def evict_to_budget(self, *, keep: str | None = None) -> list[BlobRef]:
        """Remove least recently used packages until the total fits the budget."""
        with self._lock:
            entries = sorted(self._entries(), key=lambda entry: entry[1])
            total = sum(ref.size for ref, _ in entries)
            evicted: list[BlobRef] = []
            for ref, _ in entries:
                if total <= self.budget_bytes:
                    break
                if ref.sha256 == keep or self._pins.get(ref.sha256, 0) > 0:
                    continue
                try:
                    self.store.delete(ref.sha256)
                except BlobNotFound:
                    continue
                total -= ref.size
                evicted.append(ref)
                self._stats["evictions"] += 1
                _log.info("package_evicted", sha256=ref.sha256, size=ref.size)
            return evicted

    def freshness(self, wanted: Iterable[BlobRef] = ()) -> CacheFreshness:
        """Cache statistics for the edge self-check; ``wanted`` lists packages cars will need."""
        entries = list(self._entries())
        present = {ref.sha256 for ref, _ in entries}
        uses = [mtime for _, mtime in entries]
        partials = sum(1 for _ in self.store.staging_dir.glob("*.part"))
        with self._lock:
            return CacheFreshness(
                checked_at=self._clock(),
                packages=len(entries),
                bytes_used=sum(ref.size for ref, _ in entries),
                budget_bytes=self.budget_bytes,
                partial_downloads=partials,
                oldest_use=_from_ns(min(uses)) if uses else None,
                newest_use=_from_ns(max(uses)) if uses else None,
                missing=tuple(sorted({w.sha256 for w in wanted} - present)),
                hits=self._stats["hits"],
                misses=self._stats["misses"],
                evictions=self._stats["evictions"],
                corruptions_detected=self._stats["corruptions"],
            )

    def _verify_cached(self, sha256: str) -> bool:
        with self.store.path_of(sha256).open("rb") as handle:
            actual = _sha256_of(handle)
        if actual == sha256:
            return True
        self._discard_corrupt(sha256, actual)
        return False

    def _discard_corrupt(self, sha256: str, actual: str) -> None:
        _log.error("package_corrupted", sha256=sha256, actual=actual)
        self._count("corruptions")
        with suppress(BlobNotFound):
            self.store.delete(sha256)

    def _entries(self) -> Iterator[tuple[BlobRef, int]]:
        for ref in self.store.iter():
            try:
                yield ref, self.store.path_of(ref.sha256).stat().st_mtime_ns
            except FileNotFoundError:
                continue

    def _touch(self, sha256: str) -> None:
        now_ns = int(self._clock().timestamp() * 1_000_000_000)
        os.utime(self.store.path_of(sha256), ns=(now_ns, now_ns))

    def _fetch_lock(self, sha256: str) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(sha256, threading.Lock())

    def _pin(self, sha256: str, delta: int) -> None:
        with self._lock:
            count = self._pins.get(sha256, 0) + delta
            if count > 0:
                self._pins[sha256] = count
            else:
                self._pins.pop(sha256, None)

    def _count(self, counter: str) -> None:
        with self._lock:
            self._stats[counter] += 1


def _sha256_of(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1_000_000_000, UTC)
