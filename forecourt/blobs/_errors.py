"""The exceptions of the blob store, its HTTP surface and the downloader.

Every refusal says precisely what was wrong, carries the values that caused it, and leaves the
store unchanged. Each exception has a stable ``code`` that the HTTP layer puts in its RFC 9457
problem document, so a client can branch on it without parsing prose::

    BlobError
    ├── InvalidDigest          (also ValueError)   not 64 lowercase hex digits
    ├── BlobNotFound           (also LookupError)  no blob with that digest
    ├── InvalidRange           (also ValueError)   read bounds outside the blob
    ├── BlobRejected                               a put refused; nothing was stored
    │   ├── BlobTooLarge                           more bytes than the store's per-blob bound
    │   ├── SizeMismatch                           length differs from the declared one
    │   └── DigestMismatch                         SHA-256 differs from the declared one
    └── DownloadError
        ├── DownloadRefused                        the server answered a final, non-retryable status
        ├── DownloadIntegrityError                 the received bytes are not the expected blob
        └── RetriesExhausted                       transient failures outlasted the retry budget
"""

from __future__ import annotations


class BlobError(Exception):
    """Root of every error raised by :mod:`forecourt.blobs`."""

    code = "blob_error"


class InvalidDigest(BlobError, ValueError):
    """A SHA-256 digest that is not exactly 64 lowercase hexadecimal characters."""

    code = "invalid_digest"

    def __init__(self, value: str, reason: str) -> None:
        self.value = value
        self.reason = reason
        shown = value if len(value) <= 80 else value[:77] + "..."
        super().__init__(f"invalid sha256 digest {shown!r}: {reason}")


class BlobNotFound(BlobError, LookupError):
    """No blob with this digest is stored."""

    code = "blob_not_found"

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256
        super().__init__(f"no blob with sha256 {sha256}")


class InvalidRange(BlobError, ValueError):
    """Read bounds ``[start, end)`` that do not lie inside the blob."""

    code = "invalid_range"

    def __init__(self, start: int, end: int | None, size: int) -> None:
        self.start = start
        self.end = end
        self.size = size
        super().__init__(f"range [{start}, {end}) is outside a blob of {size} bytes")


class BlobRejected(BlobError):
    """A ``put`` was refused; the temporary file was removed and nothing was stored."""

    code = "blob_rejected"


class BlobTooLarge(BlobRejected):
    """The stream carried more bytes than the store accepts for one blob."""

    code = "blob_too_large"

    def __init__(self, limit: int, received: int) -> None:
        self.limit = limit
        self.received = received
        super().__init__(f"blob exceeds the limit of {limit} bytes (at least {received} received)")


class SizeMismatch(BlobRejected):
    """The stream's length differs from the size the caller declared."""

    code = "size_mismatch"

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"declared size {expected} bytes, received {actual}")


class DigestMismatch(BlobRejected):
    """The stream's SHA-256 differs from the digest the caller declared."""

    code = "digest_mismatch"

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"declared sha256 {expected}, received content hashes to {actual}")


class DownloadError(BlobError):
    """Root of the downloader's failures; a partial file may remain for a later resume."""

    code = "download_error"


class DownloadRefused(DownloadError):
    """The server gave a final answer (e.g. 403, 404) that retrying cannot change."""

    code = "download_refused"

    def __init__(self, url: str, status: int, problem_code: str | None) -> None:
        self.url = url
        self.status = status
        self.problem_code = problem_code
        detail = f" ({problem_code})" if problem_code else ""
        super().__init__(f"GET {url} answered {status}{detail}")


class DownloadIntegrityError(DownloadError):
    """The bytes received are not the blob that was asked for; the partial file was removed."""

    code = "download_integrity"

    def __init__(self, url: str, expected: str, actual: str) -> None:
        self.url = url
        self.expected = expected
        self.actual = actual
        super().__init__(f"GET {url}: expected {expected}, received {actual}")


class RetriesExhausted(DownloadError):
    """Transient failures (connection loss, 5xx, 429) outlasted the retry budget.

    The partial file is kept, so a later call resumes where this one stopped.
    """

    code = "retries_exhausted"

    def __init__(self, url: str, attempts: int, last_error: str, have: int) -> None:
        self.url = url
        self.attempts = attempts
        self.last_error = last_error
        self.have = have
        super().__init__(
            f"GET {url}: gave up after {attempts} attempts with {have} bytes kept: {last_error}"
        )
