"""The ledger's hot SQL on a DBAPI cursor: one statement per proof, executemany per append.

The hot paths bypass the ORM and SQLAlchemy's statement compilation: a proof is a handful of
index probes, and at that size the Python around a statement costs more than the database.

* :func:`fetch_rows` reads the log's head and every row a proof needs in **one** statement (one
  round trip, one snapshot, so the size check and the hashes agree). On PostgreSQL it is a
  server-side prepared statement whose arrays are joined by ``unnest``, one primary-key probe per
  row; on SQLite a ``VALUES`` list joined on the primary key.
* :class:`ReadConnections` keeps a few connections aside for proof serving: on PostgreSQL they are
  detached from the engine's pool and in autocommit mode, so a proof pays neither the pool's
  ``pre_ping`` round trip nor ``BEGIN``/``ROLLBACK`` around its single ``SELECT``. A connection
  the server dropped is noticed by the statement that fails on it, closed, and the statement is
  retried once on a new connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine

from forecourt.ledger.merkle import NodeId

T = TypeVar("T")

_PG_ROWS = (
    "SELECT -1::smallint, size, NULL::bytea FROM ledger_head WHERE id = 1 AND %(head)s "
    "UNION ALL "
    "SELECT 0::smallint, e.idx, e.leaf_hash FROM ledger_entries AS e "
    "WHERE e.idx = ANY(%(leaves)s::bigint[]) "
    "UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM unnest(%(levels)s::smallint[], %(ids)s::bigint[]) "
    "AS k(level, idx) JOIN ledger_nodes AS n ON n.level = k.level AND n.idx = k.idx"
)
_HEAD_ROW = -1


def _sqlite_rows(with_head: bool, n_leaves: int, n_nodes: int) -> str:
    """The SQLite statement for so many leaves and nodes (only ``?`` marks are interpolated)."""
    parts = ["SELECT -1, size, NULL FROM ledger_head WHERE id = 1"] if with_head else []
    if n_leaves:
        marks = ",".join("?" * n_leaves)
        parts.append(f"SELECT 0, idx, leaf_hash FROM ledger_entries WHERE idx IN ({marks})")  # noqa: S608
    if n_nodes:
        values = ",".join(["(?,?)"] * n_nodes)
        parts.append(
            f"SELECT n.level, n.idx, n.hash FROM (VALUES {values}) AS k "  # noqa: S608
            "CROSS JOIN ledger_nodes AS n ON n.level = k.column1 AND n.idx = k.column2"
        )
    return " UNION ALL ".join(parts)


def fetch_rows(
    cursor: Any, dialect: str, leaves: Sequence[int], nodes: Sequence[NodeId], *, with_head: bool
) -> tuple[int | None, dict[NodeId, bytes]]:
    """``(head size or None, {(level, idx): hash})``; leaves come back at level 0."""
    if dialect == "postgresql":
        cursor.execute(
            _PG_ROWS,
            {
                "head": with_head,
                "leaves": list(leaves),
                "levels": [lv for lv, _ in nodes],
                "ids": [ix for _, ix in nodes],
            },
            prepare=True,
        )
    else:
        if not (with_head or leaves or nodes):
            return None, {}
        params: list[int] = list(leaves)
        for lv, ix in nodes:
            params += (lv, ix)
        cursor.execute(_sqlite_rows(with_head, len(leaves), len(nodes)), params)
    head: int | None = None
    found: dict[NodeId, bytes] = {}
    for level, idx, value in cursor.fetchall():
        if level == _HEAD_ROW:
            head = int(idx)
        else:
            found[(int(level), int(idx))] = bytes(value)
    return head, found


def _paramstyle(sql: str, dialect: str) -> str:
    """The statements below are written with ``?``; psycopg's placeholder is ``%s``."""
    return sql.replace("?", "%s") if dialect == "postgresql" else sql


_ADVANCE_HEAD = "UPDATE ledger_head SET size = size + ? WHERE id = 1 RETURNING size"
_INSERT_ENTRIES = "INSERT INTO ledger_entries (idx, leaf_hash, payload) VALUES (?, ?, ?)"
_INSERT_NODES = "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)"


def advance_head(cursor: Any, dialect: str, count: int) -> int:
    """Add ``count`` to the head and return the size *before*; the row lock serialises appenders
    across processes for the rest of the caller's transaction."""
    cursor.execute(_paramstyle(_ADVANCE_HEAD, dialect), (count,))
    (after,) = cursor.fetchone()
    return int(after) - count


def insert_rows(
    cursor: Any,
    dialect: str,
    entries: Sequence[tuple[int, bytes, bytes]],
    nodes: Sequence[tuple[int, int, bytes]],
) -> None:
    """``executemany`` of entry rows ``(idx, leaf_hash, payload)`` and node rows."""
    if entries:
        cursor.executemany(_paramstyle(_INSERT_ENTRIES, dialect), entries)
    if nodes:
        cursor.executemany(_paramstyle(_INSERT_NODES, dialect), nodes)


def copy_rows(
    cursor: Any,
    entries: Sequence[tuple[int, bytes, bytes]],
    nodes: Sequence[tuple[int, int, bytes]],
) -> None:
    """PostgreSQL ``COPY ... FROM STDIN``: the bulk-load path (several times executemany's rate)."""
    with cursor.copy("COPY ledger_entries (idx, leaf_hash, payload) FROM STDIN") as copy:
        for row in entries:
            copy.write_row(row)
    with cursor.copy("COPY ledger_nodes (level, idx, hash) FROM STDIN") as copy:
        for node in nodes:
            copy.write_row(node)


class ReadConnections:
    """A few connections set aside for proof serving (see the module docstring)."""

    def __init__(self, engine: Engine, keep: int = 4) -> None:
        self.engine = engine
        self.keep = keep
        self._dedicated = engine.dialect.name == "postgresql"
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def _open(self) -> Any:
        """A pooled connection (SQLite), or a DBAPI connection now ours alone (PostgreSQL)."""
        pooled = self.engine.raw_connection()
        if not self._dedicated:
            return pooled
        dbapi = pooled.dbapi_connection
        pooled.detach()
        dbapi.autocommit = True  # type: ignore[union-attr]
        return dbapi

    def _take(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._open()

    def _give_back(self, conn: Any) -> None:
        if self._dedicated:
            with self._lock:
                if len(self._idle) < self.keep:
                    self._idle.append(conn)
                    return
        conn.close()

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(cursor)`` for read-only statements; run again once on a new connection if the
        server had dropped the one taken (no ``pre_ping``: the failing statement is the ping)."""
        conn = self._take()
        try:
            try:
                result = work(conn.cursor())
            except self.engine.dialect.loaded_dbapi.Error as exc:
                if not self.engine.dialect.is_disconnect(exc, conn, None):
                    raise
                conn.close()
                conn = self._open()
                result = work(conn.cursor())
        except BaseException:
            conn.close()
            raise
        self._give_back(conn)
        return result

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
