"""HTTP byte ranges (RFC 9110 §14): parsing ``Range`` and evaluating ``If-Range``.

Pure functions, no I/O, so the rules are tested without a server. Decisions worth knowing:

* Only a single ``bytes`` range is honoured. A multi-range request is answered with the full
  representation (``200``), which RFC 9110 §14.2 allows ("a server MAY ignore the Range header");
  a package downloader never needs ``multipart/byteranges``.
* A ``Range`` header that does not parse, or names another unit, is ignored (``200``), as the RFC
  requires.
* A single, well-formed range that selects no byte is unsatisfiable (``416``).
* ``If-Range`` is compared strongly against our ETag; an HTTP-date never matches because blobs
  carry no ``Last-Modified``. On mismatch the Range header is ignored and the full blob is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forecourt.blobs._errors import BlobError

_RANGE_SPEC = re.compile(r"^\s*([0-9]*)\s*-\s*([0-9]*)\s*$")  # RFC 5234 DIGIT is ASCII
# Any position of 20 digits or more lies past every blob; int() would refuse 4300+ digits.
_MAX_DIGITS = 19
_BEYOND = 10**_MAX_DIGITS


def _position(text: str) -> int:
    """The value of a run of ASCII digits, or :data:`_BEYOND` if it is larger than that."""
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= _MAX_DIGITS else _BEYOND


class RangeNotSatisfiable(BlobError):
    """A single well-formed byte range that selects no byte of the representation."""

    code = "range_not_satisfiable"

    def __init__(self, header: str, size: int) -> None:
        self.header = header
        self.size = size
        super().__init__(f"range {header!r} selects no byte of a {size}-byte blob")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive byte range ``first..last``, as RFC 9110 writes ``first-pos-last-pos``."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, complete_length: int) -> str:
        return f"bytes {self.first}-{self.last}/{complete_length}"


def parse_range(header: str, size: int) -> ByteRange | None:
    """Interpret a ``Range`` header for a representation of ``size`` bytes.

    Returns the range to send, or ``None`` when the header must be ignored and the full
    representation sent. Raises :class:`RangeNotSatisfiable` for a single range past the end.
    """
    unit, sep, spec_list = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s for s in spec_list.split(",") if s.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.match(specs[0])
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = _position(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header, size)
        return ByteRange(max(0, size - suffix), size - 1)
    first = _position(first_text)
    last = _position(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(header, size)
    return ByteRange(first, min(last, size - 1))


def if_range_matches(header: str, etag: str) -> bool:
    """Whether an ``If-Range`` precondition holds for a representation with strong ``etag``.

    Strong comparison (RFC 9110 §13.1.5): a weak validator never matches, nor does a date.
    """
    candidate = header.strip()
    return not candidate.startswith("W/") and candidate == etag
