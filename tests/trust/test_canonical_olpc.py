"""The fast canonical encoder writes exactly securesystemslib's bytes, and refuses what it refuses.

Signatures cover these bytes and a car re-encodes with securesystemslib's rules, so a single
differing byte would make every bundle unverifiable: equality is checked on arbitrary JSON values.
"""

from __future__ import annotations

import json
from enum import Enum, IntEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from securesystemslib.exceptions import FormatError

from forecourt.trust import olpc
from forecourt.trust.canonical import canonical_bytes

_PROPERTY = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Every code point but lone surrogates (which no UTF-8 text holds); control characters, quotes,
# backslashes, DEL, U+2028 and astral characters are drawn often by Hypothesis's text strategy.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
_TRICKY = st.text(st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "\x7f", "u", "n", "é", "𝄞"]))
_STRINGS = _TEXT | _TRICKY
_INTS = st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
_SCALARS = st.none() | st.booleans() | _INTS | _STRINGS
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.lists(inner, max_size=6).map(tuple)
        | st.dictionaries(_STRINGS, inner, max_size=6)
    ),
    max_leaves=40,
)


def _outcome(encode: Any, value: Any) -> tuple[str, bytes | str]:
    try:
        return "bytes", encode(value)
    except (
        FormatError,
        AttributeError,
        UnicodeEncodeError,
        ValueError,
        RecursionError,
    ) as exc:  # securesystemslib lets AttributeError escape for a non-string key
        return "error", type(exc).__name__


@_PROPERTY
@given(_JSON)
def test_fast_encoding_equals_securesystemslib_on_arbitrary_json(value: Any) -> None:
    assert olpc.encode(value) == olpc.reference_encode(value)


@_PROPERTY
@given(_JSON)
def test_canonical_bytes_parse_back_to_the_same_value(value: Any) -> None:
    encoded = canonical_bytes(value)
    assert json.loads(encoded.decode("utf-8"), strict=False) == json.loads(json.dumps(value))


@settings(_PROPERTY, max_examples=100)
@given(st.dictionaries(_STRINGS, _JSON, max_size=4))
def test_joined_members_equal_encoding_the_whole_object(members: dict[str, Any]) -> None:
    joined = olpc.join_object({key: olpc.encode(value) for key, value in members.items()})
    assert joined == olpc.reference_encode(members)
    items = list(members.values())
    assert olpc.join_array(olpc.encode(v) for v in items) == olpc.reference_encode(items)


class _Colour(Enum):
    RED = "red"


class _Level(IntEnum):
    HIGH = 3


class _Shouting(int):
    def __str__(self) -> str:
        return "LOUD"


_OUTSIDE_THE_FAST_DOMAIN: list[Any] = [
    1.5,
    {"a": [1, 2.0]},
    float("nan"),
    {1: "integer key"},
    {None: "null key"},
    {("a",): 1},
    [_Colour.RED],
    {"level": _Level.HIGH},
    {"odd": _Shouting(7)},
    {"bytes": b"\x00"},
    object(),
    "\ud800",
    {"lone": ["\udfff"]},
]


@pytest.mark.parametrize("value", _OUTSIDE_THE_FAST_DOMAIN, ids=repr)
def test_values_outside_plain_json_give_securesystemslibs_result(value: Any) -> None:
    assert _outcome(olpc.encode, value) == _outcome(olpc.reference_encode, value)


def test_floats_are_refused_as_not_canonical() -> None:
    with pytest.raises(FormatError):
        canonical_bytes({"version": 1.0})


def test_control_characters_are_written_raw_and_quotes_escaped() -> None:
    assert canonical_bytes({"k\n": 'a"\\\x00\x1b\u2028'}) == (
        b'{"k\n":"a\\"\\\\\x00\x1b\xe2\x80\xa8"}'
    )


def test_nesting_deeper_than_the_fast_path_still_encodes_identically() -> None:
    deep: Any = "leaf"
    for _ in range(olpc.FAST_MAX_DEPTH + 5):
        deep = {"d": [deep]}
    assert olpc.encode(deep) == olpc.reference_encode(deep)


def test_a_cycle_fails_as_in_securesystemslib() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert _outcome(olpc.encode, loop) == ("error", "RecursionError")
