"""Whole-log verification: entries against their own leaf hashes, the stored tree and the signed
checkpoints; names the first bad index.

Evidence comes in two strengths. *Exact* evidence pins one entry: a gap or a repeated index, a
payload that no longer hashes to its recorded leaf hash (the index is inside the leaf, so a moved
entry fails too), a payload that is not a canonical record. *Range* evidence bounds it: a stored
subtree hash that no longer matches its leaves, or a signed checkpoint whose root the entries no
longer reproduce (the alteration lies after the last checkpoint that still matches). The report
names the earliest: an index when exact evidence comes first, else the range.

Two checkpoints of one size with different roots, both signed by the log, are a fork: that is
refused before any entry is looked at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from forecourt.ledger.checkpoint import NoteVerifier, SignedCheckpoint
from forecourt.ledger.entry import decode_record
from forecourt.ledger.errors import ConsistencyError, EntryError, TamperError
from forecourt.ledger.merkle import MemoryTree, NodeId
from forecourt.ledger.repository import MerkleLogStore, entry_leaf_hash


@dataclass(frozen=True, slots=True)
class AuditEntry:
    index: int
    payload: bytes
    leaf_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class AuditReport:
    """A log that passed: its size and the largest size a signed checkpoint vouches for."""

    size: int
    verified_size: int
    checkpoints: int


def check_no_fork(checkpoints: Sequence[SignedCheckpoint]) -> None:
    roots: dict[int, bytes] = {}
    for cp in checkpoints:
        size, root = cp.checkpoint.size, cp.checkpoint.root_hash
        if roots.setdefault(size, root) != root:
            raise ConsistencyError(f"fork: two signed checkpoints of size {size} differ")


def audit_log(
    entries: Iterable[AuditEntry],
    checkpoints: Sequence[SignedCheckpoint],
    stored_nodes: Mapping[NodeId, bytes] | None = None,
    head_size: int | None = None,
) -> AuditReport:
    """Verify a whole log; raise :class:`TamperError` naming the first bad index."""
    check_no_fork(checkpoints)
    tree = MemoryTree()
    exact: tuple[int, str] | None = None
    for position, entry in enumerate(entries):
        if entry.index != position:
            what = "missing" if entry.index > position else "repeated or out of order"
            exact = exact or (position, f"entry {position} is {what} (found index {entry.index})")
        h = entry_leaf_hash(position, entry.payload)
        if exact is None and entry.leaf_hash is not None and entry.leaf_hash != h:
            exact = (position, "payload does not match its recorded leaf hash")
        if exact is None:
            try:
                decode_record(entry.payload)
            except EntryError as exc:
                exact = (position, f"not a valid record: {exc}")
        tree.append_hash(h)
    size = tree.size
    candidates: list[tuple[int, int | None, str]] = []
    if exact is not None:
        candidates.append((exact[0], None, exact[1]))
    if head_size is not None and size != head_size:
        first = min(size, head_size)
        candidates.append((first, None, f"log holds {size} entries, its head says {head_size}"))
    if stored_nodes:
        bad = [
            (idx << level, (idx + 1) << level)
            for (level, idx), stored in stored_nodes.items()
            if (idx + 1) << level <= size and tree.read([(level, idx)])[0] != stored
        ]
        if bad:
            begin, end = min(bad, key=lambda r: (r[1], -r[0]))  # the narrowest, earliest
            candidates.append((begin, end, "entries no longer match the stored subtree hash"))
    verified = 0
    for cp in sorted(checkpoints, key=lambda c: c.checkpoint.size):
        cp_size = cp.checkpoint.size
        if cp_size > size:
            candidates.append(
                (size, None, f"log ends at {size}, a checkpoint vouches for {cp_size}")
            )
            break
        if tree.root(cp_size) != cp.checkpoint.root_hash:
            candidates.append((verified, cp_size, f"entries do not reproduce checkpoint {cp_size}"))
            break
        verified = cp_size
    # A range that contains other evidence (an exact index, a narrower range) is explained by it.
    spans = [(c[0], c[0] + 1 if c[1] is None else c[1]) for c in candidates]
    candidates = [
        c
        for i, c in enumerate(candidates)
        if c[1] is None or not any((b, e) != spans[i] and c[0] <= b and e <= c[1] for b, e in spans)
    ]
    if candidates:
        index, range_end, reason = min(candidates, key=lambda c: (c[0], c[1] is not None))
        exact_end: int | None = range_end
        if range_end is not None and range_end - index == 1:
            exact_end = None
        raise TamperError(index, reason, exact_end)
    return AuditReport(size=size, verified_size=verified, checkpoints=len(checkpoints))


def audit_store(store: MerkleLogStore, verifier: NoteVerifier) -> AuditReport:
    """Audit a log in its database: entries, stored leaf and subtree hashes, head, checkpoints."""
    checkpoints = [SignedCheckpoint.open(n, verifier) for n in store.checkpoint_notes()]
    rows = store.entries(0, 2**62)
    entries = [AuditEntry(e.index, e.payload, e.leaf_hash) for e in rows]
    return audit_log(entries, checkpoints, store.stored_nodes(), head_size=store.size())
