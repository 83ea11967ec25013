"""The store's fast paths keep the log's meaning: bulk load writes what appends write, proofs see
other writers' appends, a size beyond the log is refused however much is cached, and proof
serving survives the server dropping its connection."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from forecourt.ledger.errors import ProofError
from forecourt.ledger.merkle import MemoryTree
from forecourt.ledger.repository import MerkleLogStore, leaf_input
from forecourt.store.engine import create_engine_for
from tests.dbs import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER
from tests.ledger.helpers import migrate_ledger


def _store(url: str) -> MerkleLogStore:
    engine = create_engine_for(url)
    migrate_ledger(engine)
    return MerkleLogStore(engine)


def _rows(store: MerkleLogStore) -> tuple[list[tuple[object, ...]], ...]:
    with store.engine.connect() as conn:
        return tuple(
            [tuple(r) for r in conn.execute(text(q))]
            for q in (
                "SELECT idx, leaf_hash, payload FROM ledger_entries ORDER BY idx",
                "SELECT level, idx, hash FROM ledger_nodes ORDER BY level, idx",
                "SELECT size FROM ledger_head",
            )
        )


PAYLOADS = [f"entry {i}".encode() for i in range(1100)]


def test_bulk_load_writes_exactly_the_rows_appends_write(db_url: str, sqlite_url: str) -> None:
    appended = _store(sqlite_url.replace("test.sqlite3", "appended.sqlite3"))
    for start in range(0, 37, 5):
        appended.append(PAYLOADS[start : min(start + 5, 37)])
    appended.append(PAYLOADS[37:])
    loaded = _store(db_url)
    loaded.append(PAYLOADS[:37])
    assert loaded.bulk_load(PAYLOADS[37:], chunk=100) == len(PAYLOADS)
    assert _rows(loaded) == _rows(appended)
    loaded.close()
    appended.close()


def test_proofs_see_appends_made_through_another_store(db_url: str) -> None:
    reader, writer = _store(db_url), MerkleLogStore(create_engine_for(db_url))
    writer.append(PAYLOADS[:1030])
    assert reader.root(1030) == writer.root(1030)
    writer.append(PAYLOADS[1030:1100])
    ref = MemoryTree([])
    for i, p in enumerate(PAYLOADS):
        ref.append(leaf_input(i, p))
    assert reader.inclusion_proof(1099, 1100) == ref.inclusion_proof(1099, 1100)
    assert reader.consistency_proof(1030, 1100) == ref.consistency_proof(1030, 1100)
    assert reader.size() == 1100
    reader.close()
    writer.close()


def test_size_beyond_the_log_is_refused_even_with_the_top_of_the_tree_cached(
    db_url: str,
) -> None:
    store = _store(db_url)
    store.append(PAYLOADS[:1024])
    store.root(1024)  # the whole 1024-leaf subtree is now cached
    with pytest.raises(ProofError, match="beyond the log's size 1024"):
        store.root(1025)
    with pytest.raises(ProofError, match="beyond the log's size 1024"):
        store.inclusion_proof(3, 1025)
    with pytest.raises(ProofError, match="beyond the log's size 1024"):
        store.consistency_proof(1024, 1025)
    store.close()


def test_proof_serving_survives_the_server_dropping_its_connection(pg_url: str) -> None:
    store = _store(pg_url)
    store.append(PAYLOADS[:100])
    before = store.inclusion_proof(7, 100)
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB, autocommit=True
    ) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
    assert store.inclusion_proof(7, 100) == before
    store.close()
