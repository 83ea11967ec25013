"""Digest validation and the HTTP Range rules, without a server."""

from __future__ import annotations

import pytest

from forecourt.blobs import (
    BlobRef,
    ByteRange,
    InvalidDigest,
    RangeNotSatisfiable,
    if_range_matches,
    parse_range,
    validate_sha256,
)

GOOD = "ab" * 32


def test_canonical_digest_is_accepted() -> None:
    assert validate_sha256(GOOD) == GOOD


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ab" * 31, "expected 64 characters, got 62"),
        ("ab" * 33, "expected 64 characters, got 66"),
        ("AB" + "ab" * 31, "uppercase hex 'A' at position 0; use lowercase"),
        ("ab" * 10 + "g" + "b" + "ab" * 21, "non-hex character 'g' at position 20"),
        ("../" + "a" * 61, "non-hex character '.' at position 0"),
    ],
)
def test_malformed_digest_is_refused_with_the_first_defect(value: str, reason: str) -> None:
    with pytest.raises(InvalidDigest) as caught:
        validate_sha256(value)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_blob_ref_refuses_negative_size_and_bad_digest() -> None:
    with pytest.raises(ValueError, match="size"):
        BlobRef(GOOD, -1)
    with pytest.raises(InvalidDigest):
        BlobRef("xyz", 1)


def test_blob_ref_of_bytes_and_its_strong_etag() -> None:
    ref = BlobRef.of(b"abc")
    assert ref.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert ref.size == 3
    assert ref.etag == f'"{ref.sha256}"'


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-99", 1000, ByteRange(0, 99)),
        ("bytes=500-", 1000, ByteRange(500, 999)),
        ("bytes=990-2000", 1000, ByteRange(990, 999)),
        ("bytes=-100", 1000, ByteRange(900, 999)),
        ("bytes=-5000", 1000, ByteRange(0, 999)),
        ("BYTES = 1 - 2", 1000, ByteRange(1, 2)),
        ("bytes=0-0,5-9", 1000, None),  # multi-range: whole representation
        ("items=0-9", 1000, None),  # other unit: ignored
        ("bytes=9-0", 1000, None),  # last < first: invalid, ignored
        ("bytes=-", 1000, None),
        ("bytes=abc", 1000, None),
        ("0-9", 1000, None),
    ],
)
def test_range_header_interpretation(header: str, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0)]
)
def test_single_range_past_the_end_is_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.size == size


def test_content_range_is_rendered_as_rfc_9110_writes_it() -> None:
    assert ByteRange(10, 19).content_range(100) == "bytes 10-19/100"
    assert ByteRange(10, 19).length == 10


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (f'"{GOOD}"', True),
        (f' "{GOOD}" ', True),
        (f'W/"{GOOD}"', False),
        ('"other"', False),
        ("Wed, 21 Oct 2015 07:28:00 GMT", False),
    ],
)
def test_if_range_uses_strong_comparison(header: str, matches: bool) -> None:
    assert if_range_matches(header, f'"{GOOD}"') is matches
