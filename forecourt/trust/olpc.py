"""OLPC canonical JSON (the TUF dialect), byte-identical to securesystemslib and much faster.

securesystemslib's ``encode_canonical`` is the reference: sorted keys (Python code-point order),
no insignificant whitespace, ``true``/``false``/``null``, integers via ``str``, no floats, and
strings with **only** ``"`` and ``\\`` escaped: every other character, control characters
included, is written as itself, and the text is UTF-8 encoded. It does this one token at a time
in Python, which made it three quarters of the cloud's bundle-signing time.

:func:`encode` gets the same bytes from the standard library's C encoder
(``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``), which differs from
OLPC in exactly one way on plain JSON values: it escapes the control characters U+0000-U+001F
(``\\n``, ``\\u001b`` ...). Those escapes are turned back into the raw characters afterwards; a
backslash in the C encoder's output only ever starts an escape inside a string, and scanning
escapes left to right keeps ``\\\\n`` (an escaped backslash, then ``n``) apart from ``\\n``.

The fast path is taken only on the domain where byte equality is proven by a property test
(``tests/trust/test_canonical_olpc.py``): ``dict`` with ``str`` keys, ``list``, ``tuple``,
``str``, ``int``, ``bool`` and ``None``, all of exactly those types, nested at most
:data:`FAST_MAX_DEPTH` deep. Anything else (floats, non-string keys, subclasses such as enums,
deeper nesting, cycles) goes to securesystemslib itself, so output and errors there are the
reference's by construction.

:func:`join_object` and :func:`join_array` assemble canonical text from members that are
already canonical: the bytes a signature covers can be spliced into the envelope that carries
them instead of being encoded a second time.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from securesystemslib.formats import encode_canonical as _reference_encode

__all__ = ["FAST_MAX_DEPTH", "encode", "join_array", "join_object", "reference_encode"]

FAST_MAX_DEPTH = 64
"""Nesting beyond this goes to the reference encoder (which also owns cycle detection)."""

_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    separators=(",", ":"),
    sort_keys=True,
    check_circular=False,  # the depth-bounded type walk has already ruled cycles out
    allow_nan=False,
)

# Every escape the C encoder writes with ensure_ascii=False: \" \\ and the control characters.
_ESCAPE = re.compile(r'\\(?:(["\\])|u(00[01][0-9a-f])|([bfnrt]))')
_NAMED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape_controls(match: re.Match[str]) -> str:
    if match.group(1) is not None:  # \" and \\ stay escaped in OLPC too
        return match.group(0)
    code = match.group(2)
    if code is not None:
        return chr(int(code, 16))
    return _NAMED[match.group(3)]


def _plain(value: object, depth: int) -> bool:
    """Whether ``value`` lies in the proven domain of the fast path."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if depth >= FAST_MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return False
            item_kind = type(item)
            if item_kind is str or item_kind is int or item_kind is bool or item is None:
                continue
            if not _plain(item, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # type: ignore[attr-defined]
            item_kind = type(item)
            if item_kind is str or item_kind is int or item_kind is bool or item is None:
                continue
            if not _plain(item, depth + 1):
                return False
        return True
    return False


def reference_encode(value: Any) -> bytes:
    """securesystemslib's canonical bytes of ``value`` (the definition :func:`encode` matches).

    Raises securesystemslib's ``FormatError`` for what OLPC cannot encode, and
    ``UnicodeEncodeError`` for a string holding a lone surrogate.
    """
    text = _reference_encode(value)
    assert text is not None  # returned, not streamed, without an output function
    return text.encode("utf-8")


def encode(value: Any) -> bytes:
    """Canonical JSON bytes of ``value``, byte-identical to :func:`reference_encode`."""
    if not _plain(value, 0):
        return reference_encode(value)
    text = _ENCODER.encode(value)
    if "\\" in text:
        text = _ESCAPE.sub(_unescape_controls, text)
    return text.encode("utf-8")


def join_object(members: Mapping[str, bytes]) -> bytes:
    """The canonical object whose members' values are the given canonical bytes.

    Keys are sorted and encoded as OLPC does; each value must itself be canonical (the output of
    :func:`encode` or of these joins), so the result equals encoding the decoded object.
    """
    parts = [_member_name(key) + members[key] for key in sorted(members)]
    return b"{" + b",".join(parts) + b"}"


@functools.lru_cache(maxsize=1024)
def _member_name(key: str) -> bytes:
    """``"key":`` as canonical bytes; envelopes reuse a handful of names on every bundle."""
    if type(key) is not str:
        raise TypeError(f"object member names are strings, not {type(key).__name__}")
    return encode(key) + b":"


def join_array(items: Iterable[bytes]) -> bytes:
    """The canonical array of the given canonical items, in order."""
    return b"[" + b",".join(items) + b"]"
