"""Locates the transparency-dev/merkle reference vectors in shared/testdata (never copied here)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "merkle-vectors"

# The RFC 6962 / transparency-dev test tree: the leaf inputs behind the vectors' roots.
REFERENCE_LEAVES: tuple[bytes, ...] = tuple(
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
)


def vector_files(kind: str) -> list[Path]:
    root = VECTORS / kind
    if not root.is_dir():
        raise FileNotFoundError(
            f"reference Merkle vectors missing: expected {root.resolve()} "
            "(shared/testdata/merkle-vectors beside the repository)"
        )
    files = sorted(root.rglob("*.json"))
    if not files:
        raise FileNotFoundError(f"no vector files under {root.resolve()}")
    return files


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def b64(value: str) -> bytes:
    return base64.b64decode(value)
