"""Tampering with the stored log by direct SQL is detected, naming the first bad index."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from forecourt.ledger.audit import audit_store
from forecourt.ledger.checkpoint import Checkpoint, SignedCheckpoint
from forecourt.ledger.errors import ConsistencyError, TamperError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import entry_leaf_hash
from tests.ledger.helpers import fill, make_log, record

N = 40


def _log(url: str) -> TransparencyLog:
    log = make_log(url)
    fill(log, 20)
    log.issue_checkpoint()
    fill(log, N - 20)
    log.issue_checkpoint()
    return log


def _sql(log: TransparencyLog, statement: str, **params: object) -> None:
    with log.store.engine.begin() as conn:
        conn.execute(text(statement), params)


def _bad_index(log: TransparencyLog) -> TamperError:
    with pytest.raises(TamperError) as info:
        audit_store(log.store, log.verifier)
    return info.value


def test_untouched_log_verifies_against_its_checkpoints(db_url: str) -> None:
    log = _log(db_url)
    report = audit_store(log.store, log.verifier)
    assert (report.size, report.verified_size, report.checkpoints) == (N, N, 2)


def test_changed_payload_is_named(db_url: str) -> None:
    log = _log(db_url)
    forged = record(99).encode()
    _sql(log, "UPDATE ledger_entries SET payload = :p WHERE idx = 13", p=forged)
    err = _bad_index(log)
    assert (err.index, err.range_end) == (13, None)


def test_changed_payload_with_recomputed_leaf_hash_is_named(db_url: str) -> None:
    log = _log(db_url)
    forged = record(99).encode()
    _sql(
        log,
        "UPDATE ledger_entries SET payload = :p, leaf_hash = :h WHERE idx = 13",
        p=forged,
        h=entry_leaf_hash(13, forged),
    )
    err = _bad_index(log)
    # The stored subtree over [12, 16) no longer matches: the alteration lies there.
    assert err.index == 12 and err.range_end == 16


def test_deleted_entry_is_named(db_url: str) -> None:
    log = _log(db_url)
    _sql(log, "DELETE FROM ledger_entries WHERE idx = 7")
    assert _bad_index(log).index == 7


def test_deleted_last_entry_is_named(db_url: str) -> None:
    log = _log(db_url)
    _sql(log, "DELETE FROM ledger_entries WHERE idx = :i", i=N - 1)
    assert _bad_index(log).index == N - 1


def test_inserted_entry_is_named(db_url: str) -> None:
    log = _log(db_url)
    forged = record(98).encode()
    _sql(
        log,
        "INSERT INTO ledger_entries (idx, payload, leaf_hash) VALUES (:i, :p, :h)",
        i=N,
        p=forged,
        h=entry_leaf_hash(N, forged),
    )
    assert _bad_index(log).index == N


def test_reordered_entries_are_named(db_url: str) -> None:
    log = _log(db_url)
    _sql(log, "UPDATE ledger_entries SET idx = -1 WHERE idx = 5")
    _sql(log, "UPDATE ledger_entries SET idx = 5 WHERE idx = 9")
    _sql(log, "UPDATE ledger_entries SET idx = 9 WHERE idx = -1")
    assert _bad_index(log).index == 5


def test_whole_rewrite_is_caught_by_the_signed_checkpoint(db_url: str) -> None:
    log = _log(db_url)
    forged = record(97).encode()
    _sql(
        log,
        "UPDATE ledger_entries SET payload = :p, leaf_hash = :h WHERE idx = 30",
        p=forged,
        h=entry_leaf_hash(30, forged),
    )
    _sql(log, "DELETE FROM ledger_nodes")
    err = _bad_index(log)
    # Checkpoint 20 still matches, checkpoint 40 does not: the change lies in [20, 40).
    assert (err.index, err.range_end) == (20, 40)


def test_fork_two_checkpoints_of_one_size_is_refused(db_url: str) -> None:
    log = _log(db_url)
    other = SignedCheckpoint.issue(Checkpoint(log.origin, N, b"\x07" * 32), log.signer)
    log.store.save_checkpoint(other)
    with pytest.raises(ConsistencyError, match="fork"):
        audit_store(log.store, log.verifier)
