"""Where the workflow gets the images it sends: the verified package cache, behind a port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO, Protocol

from forecourt.blobs import BlobError, BlobRef
from forecourt.edge.cache import PackageCache
from forecourt.edge.cloud_client import PackageRef


class PackageUnavailable(Exception):
    def __init__(self, ref: PackageRef, detail: str) -> None:
        super().__init__(f"package {ref.name} ({ref.sha256}) unavailable: {detail}")
        self.ref = ref
        self.detail = detail


class PackageSource(Protocol):
    def ensure(self, ref: PackageRef) -> None:
        """Make ``ref`` present and hash-verified locally, or raise PackageUnavailable."""
        ...

    def open(self, ref: PackageRef) -> AbstractContextManager[BinaryIO]:
        """A handle on the verified bytes, for sending to the car."""
        ...


class CachedPackages:
    """:class:`PackageSource` over the edge's :class:`~forecourt.edge.cache.PackageCache`."""

    def __init__(self, cache: PackageCache) -> None:
        self._cache = cache

    def ensure(self, ref: PackageRef) -> None:
        try:
            self._cache.ensure(BlobRef(ref.sha256, ref.size), ref.url)
        except BlobError as exc:
            raise PackageUnavailable(ref, str(exc)) from exc

    @contextmanager
    def open(self, ref: PackageRef) -> Iterator[BinaryIO]:
        try:
            with self._cache.open_for_vehicle(ref.sha256) as handle:
                yield handle
        except BlobError as exc:
            raise PackageUnavailable(ref, str(exc)) from exc
