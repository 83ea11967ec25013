"""The Merkle log on SQLite or PostgreSQL: batched appends, O(log n) roots and proofs.

Leaf ``i`` is ``uint64be(i) || payload``: the position is inside what is hashed, so an entry moved,
inserted or deleted no longer matches its own leaf, and verification names the index.

On append the store writes each leaf's hash with its entry and the hash of every complete
subtree that the batch completes at an even level >= 2 (``ledger_nodes``). A root or proof is then
the fold of at most ~2·log2(n) stored hashes, read in two queries. Appenders are serialised by
locking the single ``ledger_head`` row, so two processes (or cloud replicas) never both take
index ``n``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from forecourt.ledger.checkpoint import SignedCheckpoint
from forecourt.ledger.errors import ProofError
from forecourt.ledger.merkle import (
    ConsistencyProof,
    InclusionProof,
    NodeId,
    build_consistency_proof,
    build_inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
)
from forecourt.store.ledger import (
    LedgerCheckpoint,
    LedgerEntry,
    LedgerHead,
    LedgerNode,
    LedgerSalt,
)

#: Levels kept in ``ledger_nodes`` are multiples of this (odd levels are recomputed).
STRIDE = 2


def leaf_input(index: int, payload: bytes) -> bytes:
    """The bytes hashed for leaf ``index``: ``uint64be(index) || payload``."""
    return struct.pack(">Q", index) + payload


def entry_leaf_hash(index: int, payload: bytes) -> bytes:
    return leaf_hash(leaf_input(index, payload))


@dataclass(frozen=True, slots=True)
class StoredEntry:
    index: int
    payload: bytes
    leaf_hash: bytes


def _parents(hashes: Sequence[bytes]) -> list[bytes]:
    """Level+2 hashes of each complete group of four level hashes."""
    return [
        node_hash(node_hash(hashes[i], hashes[i + 1]), node_hash(hashes[i + 2], hashes[i + 3]))
        for i in range(0, len(hashes) - 3, 4)
    ]


def new_node_rows(
    size: int, new_leaf_hashes: Sequence[bytes], pending: dict[NodeId, bytes]
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


_LEAVES_SQL = text("SELECT idx, leaf_hash FROM ledger_entries WHERE idx IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_NODES_SQL = text(
    "SELECT level, idx, hash FROM ledger_nodes WHERE level IN :levels AND idx IN :ids"
).bindparams(bindparam("levels", expanding=True), bindparam("ids", expanding=True))
# PostgreSQL: leaves and exact (level, idx) node pairs in one round trip, one index probe each.
_READ_SQL_PG = text(
    "SELECT 0 AS level, e.idx, e.leaf_hash FROM ledger_entries AS e "
    "WHERE e.idx = ANY(CAST(:leaf_ids AS bigint[])) "
    "UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM ledger_nodes AS n "
    "JOIN unnest(CAST(:levels AS smallint[]), CAST(:ids AS bigint[])) AS k(level, idx) "
    "ON n.level = k.level AND n.idx = k.idx"
)
_SIZE_SQL = text("SELECT size FROM ledger_head WHERE id = 1")


class MerkleLogStore:
    """One append-only log in one database. There is no update and no delete."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        # Writing the head row first takes the write lock on both backends before we read.
        session.execute(update(LedgerHead).where(LedgerHead.id == 1).values(size=LedgerHead.size))
        size = session.execute(select(LedgerHead.size).where(LedgerHead.id == 1)).scalar_one()
        hashes = [entry_leaf_hash(size + i, p) for i, p in enumerate(payloads)]
        pending = dict(
            zip(
                pending_nodes(size),
                self._read(session.connection(), pending_nodes(size)),
                strict=True,
            )
        )
        rows = new_node_rows(size, hashes, pending)
        session.execute(
            insert(LedgerEntry),
            [
                {"idx": size + i, "leaf_hash": h, "payload": p}
                for i, (h, p) in enumerate(zip(hashes, payloads, strict=True))
            ],
        )
        if rows:
            session.execute(
                insert(LedgerNode), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in rows]
            )
        session.execute(
            update(LedgerHead).where(LedgerHead.id == 1).values(size=size + len(payloads))
        )
        return list(range(size, size + len(payloads)))

    # -- reading -------------------------------------------------------------------------------

    def size(self) -> int:
        with Session(self.engine) as session:
            return int(
                session.execute(select(LedgerHead.size).where(LedgerHead.id == 1)).scalar_one()
            )

    def _read(self, conn: Connection, nodes: Sequence[NodeId]) -> list[bytes]:
        """Hashes of complete subtrees, from leaves and even-level rows (one or two queries)."""
        need_leaf: set[int] = set()
        need_node: set[tuple[int, int]] = set()
        for level, idx in nodes:
            base = level - level % STRIDE
            span = 1 << (level - base)
            for child in range(idx * span, idx * span + span):
                (need_leaf.add(child) if base == 0 else need_node.add((base, child)))
        found: dict[NodeId, bytes] = {}
        if conn.dialect.name == "postgresql":
            pairs = sorted(need_node)
            params = {
                "leaf_ids": sorted(need_leaf),
                "levels": [lv for lv, _ in pairs],
                "ids": [i for _, i in pairs],
            }
            found.update(((lv, i), h) for lv, i, h in conn.execute(_READ_SQL_PG, params))
        else:
            if need_leaf:
                rows = conn.execute(_LEAVES_SQL, {"ids": sorted(need_leaf)})
                found.update(((0, i), h) for i, h in rows)
            if need_node:
                # A superset (every level x every index) read through the primary key in one
                # statement; cheaper than building one expression per level per proof.
                levels = sorted({lv for lv, _ in need_node})
                ids = sorted({i for _, i in need_node})
                rows2 = conn.execute(_NODES_SQL, {"levels": levels, "ids": ids})
                found.update(((lv, i), h) for lv, i, h in rows2 if (lv, i) in need_node)
        out: list[bytes] = []
        for level, idx in nodes:
            base = level - level % STRIDE
            span = 1 << (level - base)
            try:
                row = [found[(base, c)] for c in range(idx * span, idx * span + span)]
            except KeyError as exc:
                raise ProofError(f"stored tree lacks subtree {exc.args[0]}") from exc
            while len(row) > 1:
                row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
            out.append(row[0])
        return out

    def _checked_size(self, conn: Connection, size: int | None) -> int:
        current = int(conn.execute(_SIZE_SQL).scalar_one())
        if size is None:
            return current
        if not 0 <= size <= current:
            raise ProofError(f"tree size {size} is beyond the log's size {current}")
        return size

    def root(self, size: int | None = None) -> tuple[int, bytes]:
        """``(size, MTH(D[size]))``; the current size when ``size`` is None."""
        with self.engine.connect() as conn:
            n = self._checked_size(conn, size)
            return n, root_at(n, lambda nodes: self._read(conn, nodes))

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        with self.engine.connect() as conn:
            n = self._checked_size(conn, size)
            return build_inclusion_proof(index, n, lambda nodes: self._read(conn, nodes))

    def index_of(self, leaf_hash_value: bytes) -> int:
        with Session(self.engine) as session:
            idx = session.execute(
                select(LedgerEntry.idx).where(LedgerEntry.leaf_hash == leaf_hash_value).limit(1)
            ).scalar_one_or_none()
        if idx is None:
            raise ProofError(f"no entry with leaf hash {leaf_hash_value.hex()}")
        return int(idx)

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        with self.engine.connect() as conn:
            n = self._checked_size(conn, size2)
            return build_consistency_proof(size1, n, lambda nodes: self._read(conn, nodes))

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
