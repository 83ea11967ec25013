"""Resumable, verified package download over HTTP (httpx, synchronous).

The download writes to ``<dest>.part``. When the connection drops, the next attempt (or a later
call, even after a restart) asks only for the missing tail with ``Range: bytes=<have>-`` and
``If-Range: <etag>``; if the server answers ``200`` instead of ``206`` the representation changed
(or the server ignores ranges), so the partial file is discarded and the download restarts cleanly.
The SHA-256 is computed while bytes arrive (the kept prefix is hashed once on resume), and the
file is renamed to ``dest`` only when both length and digest equal the expected :class:`BlobRef`.
The caller's ``expected`` comes from signed metadata: the server is never trusted about identity.

Transient failures (connection errors, 408, 429, 5xx) are retried with capped exponential backoff
and full jitter, at most ``RetryPolicy.max_attempts`` requests per call; other statuses are final.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from forecourt.blobs._digest import BlobRef
from forecourt.blobs._errors import DownloadIntegrityError, DownloadRefused, RetriesExhausted
from forecourt.logging import get_logger

_log = get_logger("blobs.download")

ProgressCallback = Callable[[int, int], None]
"""Called with ``(bytes_done, bytes_total)`` after each chunk (``rich.progress`` friendly)."""

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_jitter = secrets.SystemRandom()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many requests one download may make, and how long to wait between them."""

    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def delay(self, failures: int) -> float:
        """Full-jitter backoff, so edges that lost the link together do not return together."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        return _jitter.uniform(0, ceiling)


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What one :meth:`ResumableDownloader.download` call did."""

    ref: BlobRef
    path: Path
    resumed_from: int
    """Bytes already present in ``<dest>.part`` when the call began (0: a fresh download)."""
    bytes_transferred: int
    """Body bytes received over the network by this call."""
    requests: int
    restarts: int
    """Times a partial file was discarded because the server sent the whole blob again."""


class _Transient(Exception):
    """An attempt failed in a way that another attempt may fix."""


class _Attempt:
    """Mutable progress of one download: the ``.part`` file, its length and running hash."""

    def __init__(self, part: Path, expected: BlobRef) -> None:
        self.part = part
        self.expected = expected
        self.have = 0
        self.received = 0
        self.restarts = 0
        self.hash = hashlib.sha256()
        if part.exists():
            with part.open("rb") as kept:
                for chunk in iter(lambda: kept.read(1024 * 1024), b""):
                    self.hash.update(chunk)
                    self.have += len(chunk)
        if self.have > expected.size:
            self.reset()

    def reset(self) -> None:
        self.part.unlink(missing_ok=True)
        self.have = 0
        self.hash = hashlib.sha256()

    def append(self, out: BinaryIO, chunk: bytes) -> None:
        out.write(chunk)
        self.hash.update(chunk)
        self.have += len(chunk)
        self.received += len(chunk)


class ResumableDownloader:
    """Downloads blobs by URL into files, resuming interrupted transfers with HTTP Range.

    ``client`` carries the transport configuration (base URL, mTLS certificate, timeouts);
    ``sleep`` is injectable so tests can run retries without waiting.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    @staticmethod
    def part_path(dest: Path) -> Path:
        """Where the partial download for ``dest`` is kept between attempts."""
        return dest.with_name(dest.name + ".part")

    def download(
        self,
        url: str,
        dest: Path,
        expected: BlobRef,
        *,
        progress: ProgressCallback | None = None,
    ) -> DownloadResult:
        """Fetch ``url`` into ``dest``; return once ``dest`` holds exactly ``expected``."""
        state = _Attempt(self.part_path(dest), expected)
        resumed_from = state.have
        requests = failures = 0
        etag = expected.etag
        while state.have < expected.size or (requests == 0 and expected.size == 0):
            requests += 1
            try:
                etag = self._fetch(url, state, etag, progress)
            except (httpx.TransportError, _Transient) as exc:
                failures += 1
                error = f"{type(exc).__name__}: {exc}"
                _log.warning(
                    "download_interrupted", url=url, have=state.have, attempt=requests, error=error
                )
                if requests >= self._retry.max_attempts:
                    raise RetriesExhausted(url, requests, error, state.have) from exc
                self._sleep(self._retry.delay(failures))
        self._finish(url, state, dest)
        _log.info(
            "download_complete",
            url=url,
            sha256=expected.sha256,
            resumed_from=resumed_from,
            transferred=state.received,
            requests=requests,
        )
        return DownloadResult(
            expected, dest, resumed_from, state.received, requests, state.restarts
        )

    def _fetch(
        self, url: str, state: _Attempt, etag: str, progress: ProgressCallback | None
    ) -> str:
        """One request, appending to the partial file; returns the ETag to resume with."""
        expected = state.expected
        headers = {}
        if state.have > 0:
            headers = {"range": f"bytes={state.have}-", "if-range": etag}
        with self._client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 206:
                self._check_content_range(url, response, state)
            elif status == 200:
                if state.have > 0:
                    _log.info("download_restarted", url=url, discarded=state.have)
                    state.reset()
                    state.restarts += 1
                self._check_length(url, response, expected)
            elif status == 416 and state.have > 0:
                state.reset()
                raise _Transient("416 for the kept prefix; starting over")
            elif status in RETRYABLE_STATUS:
                raise _Transient(f"HTTP {status}")
            else:
                refused = DownloadRefused(url, status, _problem_code(response))
                _log.warning("download_refused", url=url, status=status, code=refused.problem_code)
                raise refused
            etag = response.headers.get("etag", etag)
            with state.part.open("ab") as out:
                try:
                    for chunk in response.iter_bytes():
                        if state.have + len(chunk) > expected.size:
                            state.reset()
                            raise DownloadIntegrityError(
                                url, f"{expected.size} bytes", "more bytes than expected"
                            )
                        state.append(out, chunk)
                        if progress is not None:
                            progress(state.have, expected.size)
                finally:
                    out.flush()
                    os.fsync(out.fileno())
        if state.have < expected.size:
            raise _Transient(f"body ended at {state.have} of {expected.size} bytes")
        return etag

    @staticmethod
    def _check_content_range(url: str, response: httpx.Response, state: _Attempt) -> None:
        want = f"bytes {state.have}-{state.expected.size - 1}/{state.expected.size}"
        got = response.headers.get("content-range", "")
        if got != want:
            state.reset()
            raise _Transient(f"unexpected Content-Range {got!r}, wanted {want!r}")

    @staticmethod
    def _check_length(url: str, response: httpx.Response, expected: BlobRef) -> None:
        length = response.headers.get("content-length")
        if length is not None and length != str(expected.size):
            raise DownloadIntegrityError(url, f"{expected.size} bytes", f"{length} bytes")

    @staticmethod
    def _finish(url: str, state: _Attempt, dest: Path) -> None:
        expected = state.expected
        actual = state.hash.hexdigest()
        if state.have != expected.size or actual != expected.sha256:
            state.reset()
            _log.warning("download_integrity_failed", url=url, expected=expected.sha256)
            raise DownloadIntegrityError(url, expected.sha256, actual)
        if not state.part.exists():
            state.part.touch()
        os.replace(state.part, dest)


def _problem_code(response: httpx.Response) -> str | None:
    response.read()
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    return code if isinstance(code, str) else None
