"""How the Merkle log is laid out in rows, and which rows a root or proof needs (pure, no I/O).

Leaf ``i`` is ``uint64be(i) || payload``: the position is inside what is hashed, so an entry moved,
inserted or deleted no longer matches its own leaf, and verification names the index.

Rows: each entry keeps its leaf hash; ``ledger_nodes`` keeps the hash of every *complete* subtree
at an even level >= 2 (:data:`STRIDE`), about a third of a row per leaf. The hash of any complete
subtree ``(level, idx)`` is then the fold of at most two stored hashes (one at an even level, two
at an odd one), so a root or proof is O(log n) rows.

A complete subtree never changes once written (the log is append-only), which is what makes
:class:`SubtreeCache` sound without any invalidation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from forecourt.ledger.errors import ProofError
from forecourt.ledger.merkle import NodeId, leaf_hash, node_hash

#: Levels kept in ``ledger_nodes`` are multiples of this (odd levels are recomputed).
STRIDE = 2


def leaf_input(index: int, payload: bytes) -> bytes:
    """The bytes hashed for leaf ``index``: ``uint64be(index) || payload``."""
    return struct.pack(">Q", index) + payload


def entry_leaf_hash(index: int, payload: bytes) -> bytes:
    return leaf_hash(leaf_input(index, payload))


def _base(level: int) -> int:
    return level - level % STRIDE


def stored_rows(nodes: Iterable[NodeId]) -> tuple[set[int], set[NodeId]]:
    """The leaf indices and ``(level, idx)`` node rows whose hashes make up ``nodes``."""
    leaves: set[int] = set()
    rows: set[NodeId] = set()
    for level, idx in nodes:
        base = _base(level)
        span = 1 << (level - base)
        for child in range(idx * span, idx * span + span):
            (leaves.add(child) if base == 0 else rows.add((base, child)))
    return leaves, rows


def fold_stored(node: NodeId, found: Mapping[NodeId, bytes]) -> bytes:
    """Hash of the complete subtree ``node`` from its stored rows (leaves are level 0).

    Raises :class:`ProofError` naming the row the store lacks.
    """
    level, idx = node
    base = _base(level)
    span = 1 << (level - base)
    try:
        row = [found[(base, c)] for c in range(idx * span, idx * span + span)]
    except KeyError as exc:
        raise ProofError(f"stored tree lacks subtree {exc.args[0]}") from exc
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def _parents(hashes: Sequence[bytes]) -> list[bytes]:
    """Level+2 hashes of each complete group of four level hashes."""
    return [
        node_hash(node_hash(hashes[i], hashes[i + 1]), node_hash(hashes[i + 2], hashes[i + 3]))
        for i in range(0, len(hashes) - 3, 4)
    ]


def new_node_rows(
    size: int, new_leaf_hashes: Sequence[bytes], pending: Mapping[NodeId, bytes]
) -> list[tuple[int, int, bytes]]:
    """The ``(level, index, hash)`` rows that appending ``new_leaf_hashes`` at ``size`` completes.

    ``pending`` holds the existing hashes of the incomplete group of four at each stored level
    (see :func:`pending_nodes`).
    """
    rows: list[tuple[int, int, bytes]] = []
    level, old_count, fresh = 0, size, list(new_leaf_hashes)
    while fresh:
        group_start = old_count - old_count % 4
        seq = [pending[(level, i)] for i in range(group_start, old_count)] + fresh
        parents = _parents(seq)
        first_parent = group_start // 4
        rows.extend((level + STRIDE, first_parent + j, h) for j, h in enumerate(parents))
        level, old_count, fresh = level + STRIDE, old_count // 4, parents
    return rows


def pending_nodes(size: int) -> list[NodeId]:
    """Stored nodes of the incomplete group of four at each stored level, for a log of ``size``."""
    out: list[NodeId] = []
    level, count = 0, size
    while count:
        out.extend((level, i) for i in range(count - count % 4, count))
        level, count = level + STRIDE, count // 4
    return out


@dataclass(slots=True)
class Frontier:
    """The rows an append at ``size`` builds on (:func:`pending_nodes`), carried in memory.

    A bulk load keeps one across its chunks, so it never reads back what it has just written.
    """

    size: int
    pending: dict[NodeId, bytes] = field(default_factory=dict)

    def extend(self, payloads: Sequence[bytes]) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
        """Leaf hashes and node rows for ``payloads`` appended at ``size``; moves the frontier."""
        start = self.size
        hashes = [entry_leaf_hash(start + i, p) for i, p in enumerate(payloads)]
        rows = new_node_rows(start, hashes, self.pending)
        known = dict(self.pending)
        known.update(((0, start + i), h) for i, h in enumerate(hashes))
        known.update(((lv, ix), h) for lv, ix, h in rows)
        self.size = start + len(payloads)
        self.pending = {node: known[node] for node in pending_nodes(self.size)}
        return hashes, rows


class SubtreeCache:
    """Hashes of complete subtrees at ``min_level`` and above, kept in memory.

    These are the top of the tree: every proof and root passes through them, there are only
    ``~n / 2**min_level`` of them, and, the log being append-only, a complete subtree's hash never
    changes, so nothing ever invalidates them. Whole-log audits never read through this cache.
    """

    def __init__(self, min_level: int = 10, max_items: int = 1 << 16) -> None:
        self.min_level = min_level
        self.max_items = max_items
        self._hashes: dict[NodeId, bytes] = {}

    def get(self, node: NodeId) -> bytes | None:
        return self._hashes.get(node)

    def put(self, node: NodeId, value: bytes) -> None:
        if node[0] < self.min_level:
            return
        if len(self._hashes) >= self.max_items:
            self._hashes.clear()  # rare (a log of ~2**26 leaves); refilled by the next reads
        self._hashes[node] = value
