"""Canonical, bounded serialisation of signed trust objects.

Format: OLPC canonical JSON as TUF and securesystemslib use it (sorted keys, no insignificant
whitespace, integers and strings only — no floats), so the bytes a signature covers are the bytes
any conforming implementation reproduces. Every top-level object carries a ``format`` tag with a
version (``forecourt.bundle/1``); a reader refuses a format it does not know.

Encoding goes through :mod:`forecourt.trust.olpc`, which is byte-identical to securesystemslib's
``encode_canonical`` (property-tested) and falls back to it outside the proven domain.

The size bound is checked on the raw bytes **before** parsing ("endless data" defence: a car must
not spend memory or time on an object larger than any legitimate one). Duplicate keys are refused
(two readers could pick different values), and so are floats, NaN and deep nesting.
"""

from __future__ import annotations

import json
from typing import Any

from forecourt.trust import olpc
from forecourt.trust._sslib import Metadata
from forecourt.trust.errors import BundleFormatError, EndlessData

MAX_DEPTH = 32
MAX_METADATA_FILE_BYTES = 1 << 20
"""Bound on one metadata file an operator hands the cloud (root history, image targets)."""

__all__ = [
    "MAX_DEPTH",
    "MAX_METADATA_FILE_BYTES",
    "canonical_bytes",
    "metadata_from_bytes",
    "parse_bounded",
]


def canonical_bytes(obj: Any) -> bytes:
    """Canonical JSON bytes of ``obj`` (what is signed, stored and transferred).

    Raises securesystemslib's ``FormatError`` for a value OLPC cannot encode (floats,
    non-string keys, other types), exactly as securesystemslib does.
    """
    return olpc.encode(obj)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BundleFormatError(f"duplicate key {key!r}", key=key)
        out[key] = value
    return out


def _refuse_float(text: str) -> Any:
    raise BundleFormatError("floating-point numbers are not canonical", value=text)


def _depth(obj: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        raise BundleFormatError("object nested too deeply", max_depth=MAX_DEPTH)
    if isinstance(obj, dict):
        return max((_depth(v, level + 1) for v in obj.values()), default=level)
    if isinstance(obj, list):
        return max((_depth(v, level + 1) for v in obj), default=level)
    return level


def parse_bounded(data: bytes, max_bytes: int, what: str) -> dict[str, Any]:
    """Parse ``data`` as a JSON object, refusing it unread if larger than ``max_bytes``."""
    if len(data) > max_bytes:
        raise EndlessData(
            f"{what} is {len(data)} bytes, above the bound of {max_bytes}",
            size=len(data),
            bound=max_bytes,
        )
    try:
        obj = json.loads(
            data.decode("utf-8"),
            strict=False,  # canonical JSON leaves control characters (PEM newlines) unescaped
            object_pairs_hook=_no_duplicates,
            parse_float=_refuse_float,
            parse_constant=_refuse_float,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleFormatError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise BundleFormatError(f"{what} must be a JSON object")
    _depth(obj)
    return obj


def metadata_from_bytes(
    data: bytes, what: str, max_bytes: int = MAX_METADATA_FILE_BYTES
) -> Metadata[Any]:
    """TUF metadata from the canonical bytes this project writes.

    python-tuf's own reader is strict JSON, which refuses the raw line breaks canonical JSON keeps
    inside strings: an ECDSA key's public value is PEM, so a root listing one could be written but
    not read back. This reads it as cars do (:func:`parse_bounded`), then python-tuf checks the
    structure. Raises :class:`BundleFormatError` / :class:`EndlessData` for bad bytes, and
    ``ValueError`` / ``KeyError`` / ``TypeError`` for a structure python-tuf refuses.
    """
    return Metadata.from_dict(parse_bounded(data, max_bytes, what))
