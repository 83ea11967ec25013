"""Blob identities and HTTP ranges: any digest text or ``Range`` header is valid, ignored as the
RFC says, or refused with a typed :class:`~forecourt.blobs.BlobError` that says what is wrong.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from forecourt.blobs._digest import SHA256_HEX_LENGTH, validate_sha256
from forecourt.blobs._errors import InvalidDigest
from forecourt.blobs._ranges import RangeNotSatisfiable, parse_range
from tests.fuzz.mutations import mutated_bytes
from tests.fuzz.settings import fuzz

DIGEST = hashlib.sha256(b"package").hexdigest()

digests = st.one_of(
    st.text(max_size=70),
    mutated_bytes(DIGEST.encode()).map(lambda b: b.decode("latin-1")),
    st.integers(0, 63).map(lambda i: DIGEST[:i] + DIGEST[i].upper() + DIGEST[i + 1 :]),
)


@fuzz(400)
@given(digests)
def test_a_digest_is_canonical_or_refused_naming_length_or_position(text: str) -> None:
    try:
        assert validate_sha256(text) == text
    except InvalidDigest as error:
        assert error.value == text and error.reason
        if len(text) != SHA256_HEX_LENGTH:
            assert f"got {len(text)}" in error.reason
        else:
            position = next(i for i, c in enumerate(text) if c not in "0123456789abcdef")
            assert f"position {position}" in error.reason


number = st.one_of(
    st.integers(0, 2**70).map(str),
    st.sampled_from(["", "0", "-1", "1" * 5000, "٣", "²", " 7 ", "0x10", "1e3"]),
)
range_headers = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda unit, first, last, extra: f"{unit}={first}-{last}{extra}",
        st.sampled_from(["bytes", "BYTES", " bytes ", "items", ""]),
        number, number,
        st.sampled_from(["", ",", ", 0-1", "\n", ";"]),
    ),
)  # fmt: skip


@fuzz(500)
@given(range_headers, st.integers(0, 2**40))
def test_a_range_header_selects_bytes_inside_the_blob_is_ignored_or_is_416(
    header: str, size: int
) -> None:
    try:
        chosen = parse_range(header, size)
    except RangeNotSatisfiable as error:
        assert error.size == size and error.header == header
    else:
        if chosen is not None:
            assert 0 <= chosen.first <= chosen.last < size
            assert chosen.content_range(size).startswith("bytes ")


def test_a_range_with_more_digits_than_python_converts_is_416_or_the_whole_blob() -> None:
    """``int()`` refuses more than 4300 digits; such positions lie past the end of any blob."""
    try:
        parse_range("bytes=" + "1" * 5000 + "-", 100)
    except RangeNotSatisfiable as error:
        assert error.size == 100
    else:  # pragma: no cover
        raise AssertionError("a first position past the end was satisfied")
    whole = parse_range("bytes=-" + "9" * 5000, 100)
    assert whole is not None and (whole.first, whole.last) == (0, 99)
    assert parse_range("bytes=٣-٤", 100) is None  # DIGIT is ASCII: not a range, ignored
