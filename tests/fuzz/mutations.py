"""Structure-aware mutators: what a flaky cable, a buggy tester or an attacker sends.

Two families, both Hypothesis strategies so a failure shrinks to the smallest breaking edit:

* :func:`mutated_bytes` edits a valid byte string: bit flips, truncation, extension, overwritten
  or deleted spans, huge length fields.
* :func:`mutated_json` edits a valid JSON document *by structure*: a value replaced by the wrong
  type, a huge integer, a float, a deeply nested array, a key removed or an unknown one added; then
  it may break the text itself (duplicate key, ``NaN``, non-UTF-8 bytes, truncation).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]

# Values of the wrong type, or of the right type at an absurd size, for any JSON position.
HOSTILE_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**64,
    -(2**63) - 1,
    10**400,
    "",
    "\x00",
    "x" * 5000,
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "1" * 5000,
    [],
    {},
    [None],
    {"": None},
)


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def json_paths(obj: Any, prefix: Path = ()) -> list[Path]:
    """Every path to a value inside ``obj`` (the root included), parents before children."""
    paths = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            paths.extend(json_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            paths.extend(json_paths(value, (*prefix, index)))
    return paths


def _set(obj: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return obj


def _delete(obj: Any, path: Path) -> Any:
    if not path:
        return obj
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return obj


def _replacement() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(HOSTILE_VALUES).map(copy.deepcopy),  # later edits must not touch them
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=1, max_value=200).map(_deep),
        st.text(max_size=40),
        st.integers(),
    )


@st.composite
def mutated_tree(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` (a JSON value) with one to three structural edits."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = json_paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add_key"]))
        target: Any = doc
        for step in path:
            target = target[step]
        if action == "delete" and path:
            doc = _delete(doc, path)
        elif action == "add_key" and isinstance(target, dict):
            target[draw(st.text(max_size=12))] = draw(_replacement())
        else:
            doc = _set(doc, path, draw(_replacement()))
    return doc


def _encode(doc: Any) -> bytes:
    """JSON text of ``doc``; NaN and infinities written as Python's json does (``NaN``)."""
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def mutated_json(draw: st.DrawFn, valid: Any) -> bytes:
    """The bytes of ``valid`` after structural edits, then possibly a textual one."""
    doc = draw(mutated_tree(valid))
    raw = _encode(doc)
    textual = draw(st.sampled_from(["none", "none", "duplicate_key", "bytes", "non_utf8"]))
    if textual == "duplicate_key" and raw.startswith(b"{") and len(raw) > 2:
        # Repeat the first member: {"a": 1, ...} -> {"a": 1, "a": 1, ...}
        first = json.dumps(next(iter(doc.items()))[0]) if isinstance(doc, dict) and doc else '""'
        raw = b"{" + first.encode() + b": 0, " + raw[1:]
    elif textual == "bytes":
        raw = draw(mutated_bytes(raw))
    elif textual == "non_utf8":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + raw[at:]
    return raw


@st.composite
def mutated_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` after one to four byte-level edits."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        action = draw(
            st.sampled_from(["flip", "truncate", "extend", "overwrite", "delete", "duplicate"])
        )
        at = draw(st.integers(min_value=0, max_value=len(data)))
        if action == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif action == "truncate":
            del data[at:]
        elif action == "extend":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif action == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif action == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=16))]
        else:
            data[at:at] = data[at : at + draw(st.integers(min_value=1, max_value=16))]
    return bytes(data)
