"""The identity of a blob: its SHA-256 digest and its length.

Packages are addressed by content, so the digest *is* the name. It is accepted only in one
canonical spelling (64 lowercase hex digits): two spellings of one name would let the same
package appear twice in a cache, an ETag or a ledger record.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass

from forecourt.blobs._errors import InvalidDigest

SHA256_HEX_LENGTH = 64
_LOWER_HEX = frozenset(string.digits + "abcdef")
_UPPER_HEX = frozenset("ABCDEF")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def validate_sha256(value: str) -> str:
    """Return ``value`` if it is a canonical SHA-256 hex digest, else raise :class:`InvalidDigest`.

    The reason names the first defect: the length, or the position of the first bad character.
    """
    if len(value) != SHA256_HEX_LENGTH:
        raise InvalidDigest(value, f"expected {SHA256_HEX_LENGTH} characters, got {len(value)}")
    for position, char in enumerate(value):
        if char in _LOWER_HEX:
            continue
        if char in _UPPER_HEX:
            raise InvalidDigest(
                value, f"uppercase hex {char!r} at position {position}; use lowercase"
            )
        raise InvalidDigest(value, f"non-hex character {char!r} at position {position}")
    return value


@dataclass(frozen=True, slots=True)
class BlobRef:
    """What a caller must know to fetch and verify a blob: its digest and exact length.

    Constructing one validates both, so a ``BlobRef`` in hand is always well formed.
    """

    sha256: str
    size: int

    def __post_init__(self) -> None:
        validate_sha256(self.sha256)
        if self.size < 0:
            raise ValueError(f"blob size must be >= 0, got {self.size}")

    @property
    def etag(self) -> str:
        """The strong HTTP entity tag for this blob (RFC 9110 §8.8.3): the quoted digest."""
        return f'"{self.sha256}"'

    @classmethod
    def of(cls, data: bytes) -> BlobRef:
        """The reference of an in-memory byte string (tests, small metadata)."""
        return cls(hashlib.sha256(data).hexdigest(), len(data))
