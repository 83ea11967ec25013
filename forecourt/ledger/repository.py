"""The Merkle log on SQLite or PostgreSQL: batched appends, O(log n) roots and proofs.

Layout and the rows a proof needs are in :mod:`forecourt.ledger.layout`; the hot statements in
:mod:`forecourt.ledger.sqlrows`. On append the store writes each leaf's hash with its entry and the
hash of every complete subtree that the batch completes at an even level >= 2. Appenders are
serialised by the ``ledger_head`` row, which each append updates first (``RETURNING`` the size),
so two processes (or cloud replicas) never both take index ``n``.

Two facts of an append-only log keep proof serving to one statement without stale answers:

* a complete subtree's hash never changes, so the top of the tree is cached in memory
  (:class:`~forecourt.ledger.layout.SubtreeCache`) with no invalidation;
* the size only grows, so once the head was seen at ``n`` any tree size ``<= n`` is known to
  exist; a larger size is checked against the head *in the same statement* that reads the hashes.
  (Invalidating a cached head "on append" would be wrong: other processes append too.)
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from forecourt.ledger.checkpoint import SignedCheckpoint
from forecourt.ledger.errors import ProofError
from forecourt.ledger.layout import (
    STRIDE,
    Frontier,
    SubtreeCache,
    entry_leaf_hash,
    fold_stored,
    leaf_input,
    new_node_rows,
    pending_nodes,
    stored_rows,
)
from forecourt.ledger.merkle import (
    ConsistencyProof,
    InclusionProof,
    NodeId,
    build_consistency_proof,
    build_inclusion_proof,
    root_at,
)
from forecourt.ledger.sqlrows import (
    ReadConnections,
    advance_head,
    copy_rows,
    fetch_rows,
    insert_rows,
)
from forecourt.store.ledger import (
    LedgerCheckpoint,
    LedgerEntry,
    LedgerNode,
    LedgerSalt,
)

__all__ = [
    "STRIDE",
    "MerkleLogStore",
    "StoredEntry",
    "entry_leaf_hash",
    "leaf_input",
    "new_node_rows",
    "pending_nodes",
]

#: Rows per statement when bulk loading (bounded memory, large enough to amortise round trips).
BULK_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class StoredEntry:
    index: int
    payload: bytes
    leaf_hash: bytes


class MerkleLogStore:
    """One append-only log in one database. There is no update and no delete.

    On PostgreSQL the store keeps up to ``read_connections`` connections of its own for proof
    serving (see :class:`~forecourt.ledger.sqlrows.ReadConnections`); :meth:`close` releases them
    (they are also closed when the store is garbage collected).
    """

    def __init__(self, engine: Engine, *, read_connections: int = 4) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._reads = ReadConnections(engine, keep=read_connections)
        self._top = SubtreeCache()
        self._known_size = 0
        weakref.finalize(self, ReadConnections.close, self._reads)

    def close(self) -> None:
        self._reads.close()

    # -- writing -------------------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes]) -> list[int]:
        """Append a batch in one transaction; returns the indices given to the payloads."""
        with Session(self.engine) as session, session.begin():
            return self.append_in(session, payloads)

    def append_in(self, session: Session, payloads: Sequence[bytes]) -> list[int]:
        """Append inside the caller's transaction (so a business change and its entry commit
        together)."""
        if not payloads:
            return []
        cursor = session.connection().connection.cursor()
        size = advance_head(cursor, self._dialect, len(payloads))
        frontier = Frontier(size, self._fetch_nodes(cursor, pending_nodes(size)))
        hashes, rows = frontier.extend(payloads)
        entries = [(size + i, h, p) for i, (h, p) in enumerate(zip(hashes, payloads, strict=True))]
        insert_rows(cursor, self._dialect, entries, rows)
        return list(range(size, size + len(payloads)))

    def bulk_load(self, payloads: Iterable[bytes], chunk: int = BULK_CHUNK) -> int:
        """Append many payloads in **one** transaction (an import, a benchmark's tree).

        Writes exactly the rows :meth:`append` would, but carries the tree's frontier in memory
        between chunks instead of reading it back, and on PostgreSQL streams rows with ``COPY``.
        Holds the head's lock throughout, so other appenders wait. Returns the new size.
        """
        with Session(self.engine) as session, session.begin():
            cursor = session.connection().connection.cursor()
            size = advance_head(cursor, self._dialect, 0)
            frontier = Frontier(size, self._fetch_nodes(cursor, pending_nodes(size)))
            batch: list[bytes] = []
            for payload in payloads:
                batch.append(payload)
                if len(batch) == chunk:
                    self._bulk_write(cursor, frontier, batch)
                    batch = []
            if batch:
                self._bulk_write(cursor, frontier, batch)
            advance_head(cursor, self._dialect, frontier.size - size)
        return frontier.size

    def _bulk_write(self, cursor: Any, frontier: Frontier, batch: Sequence[bytes]) -> None:
        start = frontier.size
        hashes, rows = frontier.extend(batch)
        entries = [(start + i, h, p) for i, (h, p) in enumerate(zip(hashes, batch, strict=True))]
        if self._dialect == "postgresql":
            copy_rows(cursor, entries, rows)
        else:
            insert_rows(cursor, self._dialect, entries, rows)

    # -- reading -------------------------------------------------------------------------------

    def size(self) -> int:
        return self._reads.run(lambda cur: self._tree_size(cur, None))

    def _fetch_nodes(
        self, cursor: Any, nodes: Sequence[NodeId], tree_size: int | None = None
    ) -> dict[NodeId, bytes]:
        """Hashes of complete subtrees ``nodes`` in one statement (none if all are cached).

        With ``tree_size`` beyond the size known to exist, the same statement reads the head and
        a tree larger than the log is refused before any missing row is reported.
        """
        out: dict[NodeId, bytes] = {}
        missing: list[NodeId] = []
        for node in nodes:
            hit = self._top.get(node)
            if hit is None:
                missing.append(node)
            else:
                out[node] = hit
        check = tree_size is not None and tree_size > self._known_size
        if not missing and not check:
            return out
        leaves, rows = stored_rows(missing)
        head, found = fetch_rows(
            cursor, self._dialect, sorted(leaves), sorted(rows), with_head=check
        )
        if check:
            if head is None:
                raise ProofError("the ledger has no head row: is the database migrated?")
            self._known_size = max(self._known_size, head)
            if tree_size is not None and tree_size > head:
                raise ProofError(f"tree size {tree_size} is beyond the log's size {head}")
        for node in missing:
            out[node] = value = fold_stored(node, found)
            self._top.put(node, value)
        return out

    def _reader(self, cursor: Any, tree_size: int) -> Any:
        def read(nodes: Sequence[NodeId]) -> list[bytes]:
            found = self._fetch_nodes(cursor, nodes, tree_size)
            return [found[node] for node in nodes]

        return read

    def _tree_size(self, cursor: Any, size: int | None) -> int:
        if size is None:
            head = fetch_rows(cursor, self._dialect, (), (), with_head=True)[0]
            if head is None:
                raise ProofError("the ledger has no head row: is the database migrated?")
            self._known_size = max(self._known_size, head)
            return head
        if size < 0:
            raise ProofError(f"tree size {size} is negative")
        return size

    def root(self, size: int | None = None) -> tuple[int, bytes]:
        """``(size, MTH(D[size]))``; the current size when ``size`` is None."""

        def work(cur: Any) -> tuple[int, bytes]:
            n = self._tree_size(cur, size)
            return n, root_at(n, self._reader(cur, n))

        return self._reads.run(work)

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        def work(cur: Any) -> InclusionProof:
            n = self._tree_size(cur, size)
            return build_inclusion_proof(index, n, self._reader(cur, n))

        return self._reads.run(work)

    def index_of(self, leaf_hash_value: bytes) -> int:
        with Session(self.engine) as session:
            idx = session.execute(
                select(LedgerEntry.idx).where(LedgerEntry.leaf_hash == leaf_hash_value).limit(1)
            ).scalar_one_or_none()
        if idx is None:
            raise ProofError(f"no entry with leaf hash {leaf_hash_value.hex()}")
        return int(idx)

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        def work(cur: Any) -> ConsistencyProof:
            n = self._tree_size(cur, size2)
            return build_consistency_proof(size1, n, self._reader(cur, n))

        return self._reads.run(work)

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Entries ``[start, end)`` as stored (no check: verification is the reader's job)."""
        with Session(self.engine) as session:
            q = (
                select(LedgerEntry.idx, LedgerEntry.payload, LedgerEntry.leaf_hash)
                .where(and_(LedgerEntry.idx >= start, LedgerEntry.idx < end))
                .order_by(LedgerEntry.idx)
            )
            return [StoredEntry(int(i), bytes(p), bytes(h)) for i, p, h in session.execute(q)]

    def stored_nodes(self, start_level: int = STRIDE) -> dict[NodeId, bytes]:
        """Every stored subtree hash (for whole-log verification)."""
        with Session(self.engine) as session:
            q = select(LedgerNode.level, LedgerNode.idx, LedgerNode.hash).where(
                LedgerNode.level >= start_level
            )
            return {(int(lv), int(i)): bytes(h) for lv, i, h in session.execute(q)}

    # -- checkpoints and salts -----------------------------------------------------------------

    def save_checkpoint(self, signed: SignedCheckpoint, issued_at: datetime | None = None) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(
                LedgerCheckpoint(
                    size=signed.checkpoint.size,
                    root_hash=signed.checkpoint.root_hash,
                    note=signed.render(),
                    issued_at=issued_at or datetime.now(UTC),
                )
            )

    def checkpoint_notes(self, newest_first: bool = False) -> list[str]:
        with Session(self.engine) as session:
            order = LedgerCheckpoint.id.desc() if newest_first else LedgerCheckpoint.id
            return list(session.execute(select(LedgerCheckpoint.note).order_by(order)).scalars())

    def latest_checkpoint_note(self) -> str | None:
        notes = self.checkpoint_notes(newest_first=True)
        return notes[0] if notes else None

    def save_salts(self, session: Session, index: int, salts: dict[str, bytes]) -> None:
        if salts:
            session.execute(
                insert(LedgerSalt),
                [{"leaf_index": index, "field": f, "salt": s} for f, s in salts.items()],
            )

    def salts(self, index: int) -> dict[str, bytes]:
        with Session(self.engine) as session:
            q = select(LedgerSalt.field, LedgerSalt.salt).where(LedgerSalt.leaf_index == index)
            return {f: bytes(s) for f, s in session.execute(q)}

    def shred(self, index: int, fields: Sequence[str] | None = None) -> int:
        """Crypto-shred: delete the salts of entry ``index`` (all, or the named fields).

        The entry and the tree are untouched; the commitments can no longer be opened.
        """
        with Session(self.engine) as session, session.begin():
            cond = LedgerSalt.leaf_index == index
            if fields is not None:
                cond = and_(cond, or_(*(LedgerSalt.field == f for f in fields)))
            result = session.execute(delete(LedgerSalt).where(cond))
            return int(result.rowcount)  # type: ignore[attr-defined]
