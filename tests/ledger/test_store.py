"""The SQL log on SQLite and PostgreSQL: roots and proofs match the in-memory reference tree."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from forecourt.ledger.entry import ActivityRecord, decode_record, open_commitment
from forecourt.ledger.errors import ProofError
from forecourt.ledger.merkle import MemoryTree
from forecourt.ledger.repository import leaf_input
from tests.ledger.helpers import fill, make_log


def test_migration_creates_the_ledger_tables_from_empty(db_url: str) -> None:
    log = make_log(db_url)
    tables = set(inspect(log.store.engine).get_table_names())
    assert {"ledger_entries", "ledger_nodes", "ledger_salts", "ledger_checkpoints"} <= tables
    assert log.store.size() == 0


def test_roots_and_proofs_from_storage_equal_the_reference_tree(db_url: str) -> None:
    log = make_log(db_url)
    fill(log, 45, batch=6)
    fill_more = [(e.index, e.payload) for e in log.store.entries(0, 45)]
    ref = MemoryTree()
    for i, payload in fill_more:
        ref.append(leaf_input(i, payload))
    for size in (1, 2, 5, 16, 17, 45):
        assert log.store.root(size)[1] == ref.root(size)
        for index in range(size):
            assert log.store.inclusion_proof(index, size) == ref.inclusion_proof(index, size)
        for first in range(1, size + 1):
            assert log.store.consistency_proof(first, size) == ref.consistency_proof(first, size)


def test_proof_beyond_the_log_is_refused(db_url: str) -> None:
    log = make_log(db_url)
    fill(log, 3)
    with pytest.raises(ProofError):
        log.store.inclusion_proof(0, 4)
    with pytest.raises(ProofError):
        log.store.inclusion_proof(3, 3)


def test_personal_data_is_only_a_commitment_and_shredding_keeps_the_tree(db_url: str) -> None:
    log = make_log(db_url)
    fill(log, 4)
    root_before = log.store.root()
    payload = log.store.entries(2, 3)[0].payload
    assert b"op-2" not in payload
    record = decode_record(payload)
    assert isinstance(record, ActivityRecord)
    salt = log.store.salts(2)["operator_id"]
    assert open_commitment(record, "operator_id", "op-2", salt)
    assert not open_commitment(record, "operator_id", "op-3", salt)
    assert log.store.shred(2) == 1
    assert log.store.salts(2) == {}
    assert log.store.root() == root_before
    assert log.store.entries(2, 3)[0].payload == payload
