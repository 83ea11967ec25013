"""The resumable downloader against a real server that can drop, refuse or tamper."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forecourt.blobs import (
    BlobRef,
    DownloadIntegrityError,
    DownloadRefused,
    ResumableDownloader,
    RetriesExhausted,
    RetryPolicy,
)
from tests.blobs.package_server import PackageServer

DATA = os.urandom(300_000)
REF = BlobRef.of(DATA)
CUT = 120_000


@pytest.fixture
def server(package_server: PackageServer) -> PackageServer:
    package_server.store.put([DATA])
    return package_server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(headers={"x-dealer": "dealer-42"}) as client:
        yield client


class Sleeps:
    """Records backoff delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def downloader(http: httpx.Client, attempts: int = 5) -> tuple[ResumableDownloader, Sleeps]:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=attempts, base_delay=0.5, max_delay=2.0)
    return ResumableDownloader(http, retry=policy, sleep=sleeps), sleeps


def test_download_verifies_and_reports_progress(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    dest = tmp_path / "pkg"
    progress: list[tuple[int, int]] = []
    result = downloader(http)[0].download(
        server.package_url(REF.sha256), dest, REF, progress=lambda d, t: progress.append((d, t))
    )
    assert dest.read_bytes() == DATA
    assert not ResumableDownloader.part_path(dest).exists()
    assert (result.resumed_from, result.bytes_transferred, result.requests) == (0, len(DATA), 1)
    assert progress[-1] == (len(DATA), len(DATA))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_interrupted_download_resumes_without_refetching_received_bytes(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    server.tap.cut_after, server.tap.cut_requests = CUT, 1
    dest = tmp_path / "pkg"
    load, sleeps = downloader(http)
    result = load.download(server.package_url(REF.sha256), dest, REF)

    assert dest.read_bytes() == DATA
    first, second = server.tap.seen
    assert "range" not in first.headers
    assert first.body_bytes == CUT
    assert second.headers["range"] == f"bytes={CUT}-"
    assert second.headers["if-range"] == REF.etag
    assert second.status == 206
    assert second.body_bytes == len(DATA) - CUT
    assert result.bytes_transferred == len(DATA)
    assert (result.requests, result.restarts) == (2, 0)
    assert len(sleeps.delays) == 1


def test_partial_file_survives_a_failed_call_and_the_next_call_resumes(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    server.tap.cut_after, server.tap.cut_requests = CUT, 1
    dest = tmp_path / "pkg"
    with pytest.raises(RetriesExhausted) as caught:
        downloader(http, attempts=1)[0].download(server.package_url(REF.sha256), dest, REF)
    assert caught.value.have == CUT
    assert ResumableDownloader.part_path(dest).read_bytes() == DATA[:CUT]
    assert not dest.exists()

    result = downloader(http)[0].download(server.package_url(REF.sha256), dest, REF)
    assert dest.read_bytes() == DATA
    assert result.resumed_from == CUT
    assert result.bytes_transferred == len(DATA) - CUT
    assert server.tap.seen[-1].headers["range"] == f"bytes={CUT}-"


def test_server_answering_200_to_a_resume_restarts_cleanly(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    dest = tmp_path / "pkg"
    ResumableDownloader.part_path(dest).write_bytes(b"\x00" * 5000)  # stale prefix of old content
    server.tap.drop_range = True  # the server ignores Range, as if the blob had changed
    result = downloader(http)[0].download(server.package_url(REF.sha256), dest, REF)
    assert dest.read_bytes() == DATA
    assert result.restarts == 1
    assert result.bytes_transferred == len(DATA)
    assert server.tap.seen[0].headers["range"] == "bytes=5000-"
    assert server.tap.seen[0].status == 200


def test_tampered_bytes_are_refused_and_nothing_is_kept(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    server.tap.flip_byte_at = 1234
    dest = tmp_path / "pkg"
    with pytest.raises(DownloadIntegrityError) as caught:
        downloader(http)[0].download(server.package_url(REF.sha256), dest, REF)
    assert caught.value.expected == REF.sha256
    assert not dest.exists()
    assert not ResumableDownloader.part_path(dest).exists()


def test_announced_length_different_from_expected_is_refused(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    other = server.store.put([b"a different, shorter package"])
    claimed = BlobRef(other.sha256, other.size + 10)
    with pytest.raises(DownloadIntegrityError):
        downloader(http)[0].download(server.package_url(other.sha256), tmp_path / "p", claimed)
    assert not (tmp_path / "p").exists()


def test_not_found_is_final_and_carries_the_problem_code(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    missing = BlobRef("0" * 64, 10)
    with pytest.raises(DownloadRefused) as caught:
        downloader(http)[0].download(server.package_url(missing.sha256), tmp_path / "p", missing)
    assert (caught.value.status, caught.value.problem_code) == (404, "blob_not_found")
    assert len(server.tap.seen) == 1


def test_transient_server_errors_are_retried_with_backoff(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    server.tap.fail_status, server.tap.fail_requests = 503, 2
    load, sleeps = downloader(http)
    result = load.download(server.package_url(REF.sha256), tmp_path / "p", REF)
    assert result.requests == 3
    assert (tmp_path / "p").read_bytes() == DATA
    assert len(sleeps.delays) == 2
    assert all(0 <= d <= 2.0 for d in sleeps.delays)


def test_retries_are_bounded(server: PackageServer, http: httpx.Client, tmp_path: Path) -> None:
    server.tap.fail_status, server.tap.fail_requests = 503, 100
    with pytest.raises(RetriesExhausted) as caught:
        downloader(http, attempts=3)[0].download(
            server.package_url(REF.sha256), tmp_path / "p", REF
        )
    assert caught.value.attempts == 3
    assert len(server.tap.seen) == 3
    assert "503" in caught.value.last_error


def test_complete_partial_file_is_verified_without_a_request(
    server: PackageServer, http: httpx.Client, tmp_path: Path
) -> None:
    dest = tmp_path / "pkg"
    ResumableDownloader.part_path(dest).write_bytes(DATA)
    result = downloader(http)[0].download(server.package_url(REF.sha256), dest, REF)
    assert dest.read_bytes() == DATA
    assert (result.requests, result.bytes_transferred) == (0, 0)
    assert server.tap.seen == []
