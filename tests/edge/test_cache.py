"""The edge package cache: fetch once, verify before every use, evict by size budget."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from forecourt.blobs import BlobNotFound, BlobRef, ResumableDownloader, RetryPolicy
from forecourt.edge.cache import PackageCache, PackageCorrupted, PackageTooLargeForCache
from tests.blobs.package_server import PackageServer, running_package_server

SIZE = 40_000
BUDGET = 3 * SIZE


class Clock:
    """A clock that moves one second per reading, so use order is unambiguous."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def package_server(tmp_path: Path) -> Iterator[PackageServer]:
    with running_package_server(tmp_path / "cloud") as server:
        yield server


@pytest.fixture
def packages(package_server: PackageServer) -> list[BlobRef]:
    return [package_server.store.put([os.urandom(SIZE)]) for _ in range(4)]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[PackageCache]:
    with httpx.Client(headers={"x-dealer": "dealer-42"}) as http:
        load = ResumableDownloader(http, retry=RetryPolicy(max_attempts=3), sleep=lambda _: None)
        yield PackageCache(tmp_path / "edge", budget_bytes=BUDGET, downloader=load, clock=Clock())


def corrupt(cache: PackageCache, sha256: str) -> None:
    path = cache.store.path_of(sha256)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))


def test_ensure_downloads_once_then_serves_from_cache(
    package_server: PackageServer, packages: list[BlobRef], cache: PackageCache
) -> None:
    ref = packages[0]
    url = package_server.package_url(ref.sha256)
    path = cache.ensure(ref, url)
    assert path.read_bytes() == b"".join(package_server.store.open(ref.sha256))
    assert cache.ensure(ref, url) == path
    assert len(package_server.tap.seen) == 1
    stats = cache.freshness()
    assert (stats.hits, stats.misses, stats.packages, stats.bytes_used) == (1, 1, 1, SIZE)


def test_open_for_vehicle_hands_out_the_verified_bytes(
    package_server: PackageServer, packages: list[BlobRef], cache: PackageCache
) -> None:
    ref = packages[0]
    cache.ensure(ref, package_server.package_url(ref.sha256))
    with cache.open_for_vehicle(ref.sha256) as handle:
        assert handle.read() == b"".join(package_server.store.open(ref.sha256))


def test_corrupted_cached_file_is_detected_removed_and_refetched(
    package_server: PackageServer, packages: list[BlobRef], cache: PackageCache
) -> None:
    ref = packages[0]
    url = package_server.package_url(ref.sha256)
    cache.ensure(ref, url)
    corrupt(cache, ref.sha256)

    path = cache.ensure(ref, url)

    assert path.read_bytes() == b"".join(package_server.store.open(ref.sha256))
    assert len(package_server.tap.seen) == 2
    assert cache.freshness().corruptions_detected == 1


def test_corrupted_file_is_never_served_to_a_vehicle(
    package_server: PackageServer, packages: list[BlobRef], cache: PackageCache
) -> None:
    ref = packages[0]
    cache.ensure(ref, package_server.package_url(ref.sha256))
    corrupt(cache, ref.sha256)
    with pytest.raises(PackageCorrupted) as caught, cache.open_for_vehicle(ref.sha256):
        pytest.fail("a corrupted package was opened for a vehicle")
    assert caught.value.sha256 == ref.sha256
    assert caught.value.actual != ref.sha256
    assert not cache.store.exists(ref.sha256)
    with pytest.raises(BlobNotFound), cache.open_for_vehicle(ref.sha256):
        pytest.fail("a removed package was opened")


def test_least_recently_used_package_is_evicted_over_budget(
    package_server: PackageServer, packages: list[BlobRef], cache: PackageCache
) -> None:
    a, b, c, d = packages
    for ref in (a, b, c):
        cache.ensure(ref, package_server.package_url(ref.sha256))
    with cache.open_for_vehicle(a.sha256):
        pass  # a is now more recently used than b

    cache.ensure(d, package_server.package_url(d.sha256))

    assert {ref.sha256 for ref in cache.store.iter()} == {a.sha256, c.sha256, d.sha256}
    stats = cache.freshness()
    assert (stats.evictions, stats.bytes_used) == (1, BUDGET)


def test_package_being_served_is_not_evicted(
    package_server: PackageServer, packages: list[BlobRef], cache: PackageCache
) -> None:
    a, b, c, d = packages
    for ref in (a, b, c):
        cache.ensure(ref, package_server.package_url(ref.sha256))
    with cache.open_for_vehicle(a.sha256) as handle:
        cache.ensure(b, package_server.package_url(b.sha256))  # a is older than b now
        cache.ensure(c, package_server.package_url(c.sha256))
        cache.ensure(d, package_server.package_url(d.sha256))
        assert cache.store.exists(a.sha256)
        assert len(handle.read()) == SIZE
    assert not cache.store.exists(b.sha256)


def test_package_larger_than_the_budget_is_refused_without_download(
    package_server: PackageServer, cache: PackageCache
) -> None:
    huge = BlobRef("f" * 64, BUDGET + 1)
    with pytest.raises(PackageTooLargeForCache) as caught:
        cache.ensure(huge, package_server.package_url(huge.sha256))
    assert caught.value.budget_bytes == BUDGET
    assert package_server.tap.seen == []


def test_interrupted_fetch_resumes_on_the_next_ensure(
    package_server: PackageServer, packages: list[BlobRef], tmp_path: Path
) -> None:
    ref = packages[0]
    url = package_server.package_url(ref.sha256)
    package_server.tap.cut_after, package_server.tap.cut_requests = 15_000, 1
    with httpx.Client(headers={"x-dealer": "dealer-42"}) as http:
        one_try = ResumableDownloader(http, retry=RetryPolicy(max_attempts=1))
        cache = PackageCache(tmp_path / "edge", budget_bytes=BUDGET, downloader=one_try)
        with pytest.raises(Exception, match="gave up"):
            cache.ensure(ref, url)
        assert cache.freshness().partial_downloads == 1
        cache.ensure(ref, url)
    assert package_server.tap.seen[-1].headers["range"] == "bytes=15000-"
    assert package_server.tap.seen[-1].body_bytes == SIZE - 15_000
    assert cache.freshness().partial_downloads == 0


def test_freshness_lists_wanted_packages_that_are_missing(
    package_server: PackageServer, packages: list[BlobRef], cache: PackageCache
) -> None:
    a, b, *_ = packages
    cache.ensure(a, package_server.package_url(a.sha256))
    stats = cache.freshness(wanted=[a, b])
    assert stats.missing == (b.sha256,)
    assert stats.budget_bytes == BUDGET
    assert stats.oldest_use is not None
    assert stats.newest_use is not None
    assert stats.oldest_use <= stats.newest_use <= stats.checked_at
