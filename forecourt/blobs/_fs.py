"""Blobs as files: ``<root>/sha256/ab/cd/<hex>``, written via a temporary file and a rename.

The two directory levels keep any one directory small (65 536 leaves) on a dealer box holding
thousands of packages. A put streams into ``<root>/tmp`` (same filesystem, so the final
``os.replace`` is atomic), is fsynced, made read-only, then renamed into place: a reader sees
either no blob or the whole blob, never a prefix, even across a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from forecourt.blobs._digest import BlobRef, validate_sha256
from forecourt.blobs._errors import BlobNotFound, BlobRejected, SizeMismatch
from forecourt.blobs._store import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_BLOB_SIZE, Intake, check_bounds
from forecourt.logging import get_logger

_log = get_logger("blobs.fs")
_READ_ONLY = 0o444


class FileBlobStore:
    """The filesystem :class:`~forecourt.blobs.BlobStore` used by the cloud and the edge."""

    def __init__(self, root: Path, *, max_blob_size: int = DEFAULT_MAX_BLOB_SIZE) -> None:
        if max_blob_size <= 0:
            raise ValueError(f"max_blob_size must be > 0, got {max_blob_size}")
        self.root = root
        self._max_blob_size = max_blob_size
        self._blobs = root / "sha256"
        self.staging_dir = root / "tmp"
        """Where partial files live; on the store's filesystem so a rename into place is atomic."""
        self._blobs.mkdir(parents=True, exist_ok=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    @property
    def max_blob_size(self) -> int:
        return self._max_blob_size

    def path_of(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        validate_sha256(sha256)
        return self._blobs / sha256[:2] / sha256[2:4] / sha256

    def put(
        self,
        chunks: Iterable[bytes],
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> BlobRef:
        intake = Intake(self._max_blob_size, expected_sha256, expected_size)
        try:
            intake.check_declared_size()
            if intake.expected_sha256 is not None and self.exists(intake.expected_sha256):
                return self._already_stored(intake.expected_sha256, expected_size)
            return self._write(chunks, intake)
        except BlobRejected as exc:
            _log.warning("blob_put_refused", code=exc.code, reason=str(exc))
            raise

    def import_file(self, path: Path, expected: BlobRef) -> BlobRef:
        """Move a file already on this filesystem into the store after verifying it.

        The edge downloads into :attr:`staging_dir` and imports, avoiding a second copy of a
        large package. The file is hashed again here: the store trusts no caller's digest.
        On refusal the file is deleted.
        """
        intake = Intake(self._max_blob_size, expected.sha256, expected.size)
        try:
            intake.check_declared_size()
            with path.open("rb") as source:
                for chunk in iter(lambda: source.read(DEFAULT_CHUNK_SIZE), b""):
                    intake.feed(chunk)
            ref = intake.finish()
        except BlobRejected as exc:
            path.unlink(missing_ok=True)
            _log.warning("blob_import_refused", code=exc.code, reason=str(exc))
            raise
        self._install(path, ref)
        return ref

    def _already_stored(self, sha256: str, expected_size: int | None) -> BlobRef:
        ref = self.stat(sha256)
        if expected_size is not None and ref.size != expected_size:
            raise SizeMismatch(expected_size, ref.size)
        return ref

    def _write(self, chunks: Iterable[bytes], intake: Intake) -> BlobRef:
        fd, temp_name = tempfile.mkstemp(dir=self.staging_dir, prefix="put-", suffix=".tmp")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    intake.feed(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            ref = intake.finish()
            self._install(temp, ref)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return ref

    def _install(self, temp: Path, ref: BlobRef) -> None:
        final = self.path_of(ref.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp.chmod(_READ_ONLY)
        os.replace(temp, final)
        _fsync_dir(final.parent)

    def open(
        self,
        sha256: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        path = self.path_of(sha256)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        try:
            stop = check_bounds(start, end, os.fstat(handle.fileno()).st_size)
            handle.seek(start)
        except BaseException:
            handle.close()
            raise
        return _read_span(handle, stop - start, chunk_size)

    def stat(self, sha256: str) -> BlobRef:
        try:
            size = self.path_of(sha256).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        return BlobRef(sha256, size)

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def delete(self, sha256: str) -> None:
        try:
            self.path_of(sha256).unlink()
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        _log.info("blob_deleted", sha256=sha256)

    def iter(self) -> Iterator[BlobRef]:
        for path in self._blobs.glob("??/??/*"):
            name = path.name
            if len(name) == 64 and path.parent.name == name[2:4] and name.islower():
                with contextlib.suppress(ValueError, FileNotFoundError):
                    yield BlobRef(name, path.stat().st_size)


def _read_span(handle: BinaryIO, remaining: int, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while remaining > 0:
            chunk = handle.read(min(chunk_size, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: POSIX only guarantees it once the directory itself is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
