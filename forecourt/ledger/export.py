"""The export file: JSON lines a third party can verify with nothing but the log's public key.

Line 1 is a header ``{"format": "forecourt-ledger-export", "version": 1, "origin": ...}``; then
one ``{"index", "payload", "leaf_hash"}`` line per entry (base64) in index order; then one
``{"checkpoint": <signed note>}`` line per checkpoint the log issued.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from forecourt.ledger.audit import AuditEntry
from forecourt.ledger.errors import ExportFormatError
from forecourt.ledger.repository import MerkleLogStore
from forecourt.ledger.wire import b64d, b64e

FORMAT = "forecourt-ledger-export"
_PAGE = 10_000


def write_export(store: MerkleLogStore, origin: str, out: IO[str]) -> int:
    """Write the whole log; returns the number of entries written."""
    size = store.size()
    out.write(json.dumps({"format": FORMAT, "version": 1, "origin": origin}) + "\n")
    for start in range(0, size, _PAGE):
        for e in store.entries(start, min(size, start + _PAGE)):
            line = {"index": e.index, "payload": b64e(e.payload), "leaf_hash": b64e(e.leaf_hash)}
            out.write(json.dumps(line) + "\n")
    for note in store.checkpoint_notes():
        out.write(json.dumps({"checkpoint": note}) + "\n")
    return size


@dataclass(frozen=True, slots=True)
class Export:
    origin: str
    entries: list[AuditEntry]
    checkpoints: list[str]


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as f:
        for n, line in enumerate(f, start=1):
            try:
                obj = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
                raise ExportFormatError(f"{path}:{n}: not UTF-8 JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise ExportFormatError(f"{path}:{n}: not a JSON object")
            yield n, obj


def read_export(path: Path) -> Export:
    lines = _lines(path)
    try:
        _, header = next(lines)
    except StopIteration:
        raise ExportFormatError(f"{path}: empty file") from None
    if header.get("format") != FORMAT or header.get("version") != 1:
        raise ExportFormatError(f"{path}: not a version 1 {FORMAT} file")
    entries: list[AuditEntry] = []
    checkpoints: list[str] = []
    for n, obj in lines:
        if "checkpoint" in obj:
            checkpoints.append(str(obj["checkpoint"]))
            continue
        if checkpoints:
            raise ExportFormatError(f"{path}:{n}: entry after the checkpoints")
        index = obj.get("index")
        if not isinstance(index, int):
            raise ExportFormatError(f"{path}:{n}: entry without an integer index")
        entries.append(
            AuditEntry(
                index,
                b64d(obj.get("payload"), f"line {n} payload"),
                b64d(obj["leaf_hash"], f"line {n} leaf_hash") if "leaf_hash" in obj else None,
            )
        )
    return Export(str(header.get("origin", "")), entries, checkpoints)
