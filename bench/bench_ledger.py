"""Ledger benchmark: batched appends/s beside raw batched INSERTs/s into the same database in the
same run (SQLite and PostgreSQL), and inclusion/consistency proof time at 1 M entries.

Goals (issue 5): appends >= 50 % of the raw insert rate; an inclusion proof under 1 ms.

Baselines, both into a table with the entries table's columns and index, one transaction per
batch: "raw" is DBAPI ``executemany`` of tuples (the fastest plain insert, the one the goal is
judged against); "core" is SQLAlchemy Core ``insert()`` with dicts (the baseline of earlier
runs, kept for comparison). Raw and append batches alternate so that load on a shared machine
hits both alike; the figures are medians over the rounds. The 1 M tree is then built with
``MerkleLogStore.bulk_load`` (one transaction; ``COPY`` on PostgreSQL), and every proof timed is
checked against the root once.

    .venv/bin/python bench/bench_ledger.py           # 1 M entries for the proof figures
    .venv/bin/python bench/bench_ledger.py --quick   # 100 k
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from alembic import command
from sqlalchemy import BigInteger, Column, Engine, LargeBinary, MetaData, insert
from sqlalchemy import Table as SaTable

from forecourt.ledger.entry import ActivityRecord, EventKind, NetworkEnvironment, commit
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.engine import alembic_config, create_engine_for

BATCH = 1000
PG = dict(
    host=os.environ.get("FORECOURT_TEST_PG_HOST", "127.0.0.1"),
    port=int(os.environ.get("FORECOURT_TEST_PG_PORT", "5432")),
    user=os.environ.get("FORECOURT_TEST_PG_USER", "postgres"),
    dbname=os.environ.get("FORECOURT_TEST_PG_DB", "test"),
)


def payloads(n: int) -> list[bytes]:
    """Realistic leaf payloads: activity records with committed personal fields."""
    out = []
    for i in range(n):
        commitments, _ = commit({"operator_id": f"op-{i % 50}", "owner_ref": f"owner-{i}"})
        out.append(
            ActivityRecord(
                timestamp=datetime(2025, 1, 1, tzinfo=UTC),
                kind=EventKind.ACTIVATION,
                vin=f"WVWZZZ1JZXW{i % 1_000_000:06d}",
                dealer_id="D-0001",
                edge_id="edge-0001",
                network=NetworkEnvironment.ONLINE,
                response_status="ok",
                features=("adaptive-cruise", "heated-seats"),
                package_versions={"os": "24.3.1", "maps-eu": "2025.1"},
                evidence_hashes=("ab" * 32,),
                commitments=commitments,
            ).encode()
        )
    return out


def migrate(engine: Engine) -> None:
    cfg = alembic_config(engine)
    cfg.set_main_option("path_separator", "os")
    command.upgrade(cfg, "ledger@head")


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{d}/bench.sqlite3"
        return
    name = f"forecourt_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Rates:
    append: float
    raw: float
    core: float


def raw_table(engine: Engine, name: str) -> SaTable:
    """The entries table's columns and index, without the tree: the raw-insert baseline."""
    table = SaTable(
        name,
        MetaData(),
        Column("idx", BigInteger, primary_key=True, autoincrement=False),
        Column("leaf_hash", LargeBinary(32), nullable=False, index=True),
        Column("payload", LargeBinary, nullable=False),
    )
    table.create(engine)
    return table


def rate_core(engine: Engine, table: SaTable, data: list[bytes], first: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(data), BATCH):
        rows = [
            {"idx": first + start + i, "leaf_hash": hashlib.sha256(p).digest(), "payload": p}
            for i, p in enumerate(data[start : start + BATCH])
        ]
        with engine.begin() as conn:
            conn.execute(insert(table), rows)
    return len(data) / (time.perf_counter() - t0)


def rate_raw(engine: Engine, table: SaTable, data: list[bytes], first: int) -> float:
    mark = "%s" if engine.dialect.name == "postgresql" else "?"
    sql = f"INSERT INTO {table.name} (idx, leaf_hash, payload) VALUES ({mark}, {mark}, {mark})"
    conn = engine.raw_connection()
    try:
        t0 = time.perf_counter()
        for start in range(0, len(data), BATCH):
            rows = [
                (first + start + i, hashlib.sha256(p).digest(), p)
                for i, p in enumerate(data[start : start + BATCH])
            ]
            cur = conn.cursor()
            cur.executemany(sql, rows)
            conn.commit()
        return len(data) / (time.perf_counter() - t0)
    finally:
        conn.close()


def rate_append(store: MerkleLogStore, data: list[bytes]) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(data), BATCH):
        store.append(data[start : start + BATCH])
    return len(data) / (time.perf_counter() - t0)


def rates(engine: Engine, store: MerkleLogStore, data: list[bytes], rounds: int = 4) -> Rates:
    """Median appends/s, raw and Core inserts/s over ``rounds`` alternating rounds."""
    raw_t, core_t = raw_table(engine, "bench_raw"), raw_table(engine, "bench_core")
    per = len(data) // rounds
    app, raw, core = [], [], []
    for r in range(rounds):
        chunk = data[r * per : (r + 1) * per]
        raw.append(rate_raw(engine, raw_t, chunk, r * per))
        app.append(rate_append(store, chunk))
        core.append(rate_core(engine, core_t, chunk, r * per))
    return Rates(statistics.median(app), statistics.median(raw), statistics.median(core))


def proof_times(store: MerkleLogStore, size: int, rounds: int = 1000) -> tuple[float, float, float]:
    rng = random.Random(5)
    root = store.root(size)[1]
    inc, cons = [], []
    for _ in range(rounds):
        i = rng.randrange(size)
        t0 = time.perf_counter()
        proof = store.inclusion_proof(i, size)
        inc.append(time.perf_counter() - t0)
        m = rng.randrange(1, size)
        t0 = time.perf_counter()
        consistency = store.consistency_proof(m, size)
        cons.append(time.perf_counter() - t0)
        leaf = store.entries(i, i + 1)[0].leaf_hash
        proof.verify(leaf, root)
        consistency.verify(store.root(m)[1], root)
    inc.sort()
    return (
        statistics.median(inc) * 1e3,
        inc[int(len(inc) * 0.99)] * 1e3,
        statistics.median(cons) * 1e3,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100 k entries instead of 1 M")
    args = ap.parse_args()
    big = 100_000 if args.quick else 1_000_000
    rate_n = 20_000 if args.quick else 50_000
    print(f"building {big} payloads ...", flush=True)
    data = payloads(big)
    for kind in ("sqlite", "postgresql"):
        with database(kind) as url:
            engine = create_engine_for(url)
            migrate(engine)
            store = MerkleLogStore(engine)
            r = rates(engine, store, data[:rate_n])
            print(
                f"{kind:10s} appends {r.append:9.0f}/s   raw inserts {r.raw:9.0f}/s   "
                f"ratio {r.append / r.raw:5.1%}   (goal >= 50 %, batches of {BATCH}); "
                f"Core inserts {r.core:9.0f}/s, ratio {r.append / r.core:5.1%}"
            )
            t0 = time.perf_counter()
            store.bulk_load(data[rate_n:big])
            build = time.perf_counter() - t0
            med, p99, cons = proof_times(store, big)
            print(
                f"{kind:10s} tree of {big}: bulk-loaded {big - rate_n} in {build:.1f} s "
                f"({(big - rate_n) / build:.0f}/s); inclusion proof median "
                f"{med:.3f} ms, p99 {p99:.3f} ms (goal < 1 ms); consistency proof median "
                f"{cons:.3f} ms"
            )
            store.close()
            engine.dispose()


if __name__ == "__main__":
    main()
