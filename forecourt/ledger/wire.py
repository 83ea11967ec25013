"""JSON forms of proofs shared by the API, the export and the command line (base64 hashes)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from forecourt.ledger.errors import ExportFormatError
from forecourt.ledger.merkle import ConsistencyProof, InclusionProof


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64d(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ExportFormatError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII character
        raise ExportFormatError(f"{what} is not base64: {exc}") from exc


def _int(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ExportFormatError(f"{key!r} is not a non-negative integer")
    return value


def _hashes(d: Mapping[str, Any]) -> tuple[bytes, ...]:
    raw = d.get("hashes")
    if not isinstance(raw, list):
        raise ExportFormatError("'hashes' is not a list")
    return tuple(b64d(h, f"hashes[{i}]") for i, h in enumerate(raw))


def inclusion_to_json(proof: InclusionProof) -> dict[str, Any]:
    return {
        "index": proof.index,
        "tree_size": proof.size,
        "hashes": [b64e(h) for h in proof.hashes],
    }


def inclusion_from_json(d: Mapping[str, Any]) -> InclusionProof:
    return InclusionProof(_int(d, "index"), _int(d, "tree_size"), _hashes(d))


def consistency_to_json(proof: ConsistencyProof) -> dict[str, Any]:
    return {
        "size1": proof.size1,
        "size2": proof.size2,
        "hashes": [b64e(h) for h in proof.hashes],
    }


def consistency_from_json(d: Mapping[str, Any]) -> ConsistencyProof:
    return ConsistencyProof(_int(d, "size1"), _int(d, "size2"), _hashes(d))
