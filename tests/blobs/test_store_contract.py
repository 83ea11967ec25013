"""The BlobStore contract, run against the filesystem and the in-memory implementation."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecourt.blobs import (
    EMPTY_SHA256,
    BlobNotFound,
    BlobRef,
    BlobStore,
    BlobTooLarge,
    DigestMismatch,
    FileBlobStore,
    InvalidDigest,
    InvalidRange,
    MemoryBlobStore,
    SizeMismatch,
)

LIMIT = 64 * 1024
DATA = bytes(range(256)) * 40  # 10 240 bytes
REF = BlobRef.of(DATA)
MISSING = "0" * 64


@pytest.fixture(params=["filesystem", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FileBlobStore(tmp_path / "blobs", max_blob_size=LIMIT)
    return MemoryBlobStore(max_blob_size=LIMIT)


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def nothing_stored(store: BlobStore) -> bool:
    leftovers = list((store.root / "tmp").iterdir()) if isinstance(store, FileBlobStore) else []
    return list(store.iter()) == [] and leftovers == []


def test_both_implementations_satisfy_the_protocol(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_put_returns_the_digest_and_size_computed_from_the_bytes(store: BlobStore) -> None:
    ref = store.put(chunks(DATA))
    assert ref == BlobRef(hashlib.sha256(DATA).hexdigest(), len(DATA))
    assert b"".join(store.open(ref.sha256)) == DATA
    assert store.stat(ref.sha256) == ref
    assert store.exists(ref.sha256)


def test_put_is_idempotent(store: BlobStore) -> None:
    first = store.put(chunks(DATA))
    second = store.put(chunks(DATA, 333))
    third = store.put(chunks(DATA), expected_sha256=REF.sha256, expected_size=REF.size)
    assert first == second == third == REF
    assert list(store.iter()) == [REF]


def test_empty_blob_is_a_blob(store: BlobStore) -> None:
    ref = store.put([])
    assert ref == BlobRef(EMPTY_SHA256, 0)
    assert b"".join(store.open(EMPTY_SHA256)) == b""


def test_put_with_wrong_declared_digest_is_refused_and_nothing_stored(store: BlobStore) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DigestMismatch) as caught:
        store.put(chunks(DATA), expected_sha256=wrong)
    assert caught.value.expected == wrong
    assert caught.value.actual == REF.sha256
    assert nothing_stored(store)


def test_put_with_wrong_declared_size_is_refused_and_nothing_stored(store: BlobStore) -> None:
    with pytest.raises(SizeMismatch) as short:
        store.put(chunks(DATA), expected_size=len(DATA) + 1)
    assert (short.value.expected, short.value.actual) == (len(DATA) + 1, len(DATA))
    with pytest.raises(SizeMismatch):
        store.put(chunks(DATA), expected_size=len(DATA) - 1)
    assert nothing_stored(store)


def test_put_over_the_size_bound_is_refused_and_nothing_stored(store: BlobStore) -> None:
    with pytest.raises(BlobTooLarge) as caught:
        store.put(chunks(b"x" * (LIMIT + 1), 4096))
    assert caught.value.limit == LIMIT
    assert caught.value.received > LIMIT
    assert nothing_stored(store)


def test_declared_size_over_the_bound_is_refused_before_reading(store: BlobStore) -> None:
    pulled: list[int] = []

    def counted() -> Iterator[bytes]:
        pulled.append(1)
        yield b"x"

    with pytest.raises(BlobTooLarge):
        store.put(counted(), expected_size=LIMIT + 1)
    assert pulled == []
    assert nothing_stored(store)


def test_a_stream_that_fails_midway_leaves_nothing(store: BlobStore) -> None:
    def broken() -> Iterator[bytes]:
        yield DATA[:100]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put(broken())
    assert nothing_stored(store)


def test_known_digest_with_conflicting_size_is_refused(store: BlobStore) -> None:
    store.put(chunks(DATA))
    with pytest.raises(SizeMismatch):
        store.put(chunks(DATA), expected_sha256=REF.sha256, expected_size=REF.size + 5)


def test_open_streams_a_half_open_range_in_bounded_chunks(store: BlobStore) -> None:
    store.put(chunks(DATA))
    parts = list(store.open(REF.sha256, 100, 5100, chunk_size=1024))
    assert b"".join(parts) == DATA[100:5100]
    assert max(len(p) for p in parts) <= 1024
    assert b"".join(store.open(REF.sha256, len(DATA))) == b""


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 4), (0, len(DATA) + 1)])
def test_open_refuses_bounds_outside_the_blob(
    store: BlobStore, start: int, end: int | None
) -> None:
    store.put(chunks(DATA))
    with pytest.raises(InvalidRange) as caught:
        store.open(REF.sha256, start, end)
    assert caught.value.size == len(DATA)


def test_missing_blob_raises_not_found_at_call_time(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound) as caught:
        store.open(MISSING)
    assert caught.value.sha256 == MISSING
    with pytest.raises(BlobNotFound):
        store.stat(MISSING)
    with pytest.raises(BlobNotFound):
        store.delete(MISSING)
    assert not store.exists(MISSING)


@pytest.mark.parametrize("bad", ["", "A" * 64, "../../etc/passwd", "a" * 63])
def test_malformed_digest_is_refused_everywhere(store: BlobStore, bad: str) -> None:
    for call in (store.open, store.stat, store.exists, store.delete):
        with pytest.raises(InvalidDigest):
            call(bad)
    with pytest.raises(InvalidDigest):
        store.put(chunks(DATA), expected_sha256=bad)
    assert nothing_stored(store)


def test_delete_removes_only_that_blob(store: BlobStore) -> None:
    other = store.put([b"other"])
    store.put(chunks(DATA))
    store.delete(REF.sha256)
    assert not store.exists(REF.sha256)
    assert list(store.iter()) == [other]


def test_iter_lists_every_blob(store: BlobStore) -> None:
    refs = {store.put([bytes([i]) * (i + 1)]) for i in range(5)}
    assert set(store.iter()) == refs


def test_filesystem_layout_and_read_only_blobs(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    ref = store.put([DATA])
    path = tmp_path / "sha256" / ref.sha256[:2] / ref.sha256[2:4] / ref.sha256
    assert store.path_of(ref.sha256) == path
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_filesystem_import_verifies_and_deletes_a_wrong_file(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    staged = store.staging_dir / "incoming"
    staged.write_bytes(DATA[:-1] + b"\x00")
    with pytest.raises(DigestMismatch):
        store.import_file(staged, REF)
    assert not staged.exists()
    assert not store.exists(REF.sha256)
    staged.write_bytes(DATA)
    assert store.import_file(staged, REF) == REF
    assert not staged.exists()
    assert store.path_of(REF.sha256).read_bytes() == DATA


def test_filesystem_iter_ignores_foreign_files(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    ref = store.put([DATA])
    (tmp_path / "sha256" / "zz").mkdir()
    (tmp_path / "sha256" / "zz" / "notes.txt").write_text("hello")
    assert list(store.iter()) == [ref]
