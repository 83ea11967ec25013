"""``TransparencyLog.append_activities_in``: records appended in the caller's transaction commit
with it or vanish with it, salts included, and the log goes on as if they were never tried."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from forecourt.ledger.entry import ActivityRecord, decode_record, open_commitment
from forecourt.ledger.merkle import MemoryTree
from forecourt.ledger.repository import entry_leaf_hash
from forecourt.store.ledger import LedgerSalt
from tests.ledger.helpers import fill, make_log, record


class _BusinessFailure(Exception):
    pass


def _salts(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LedgerSalt)) or 0)


def test_records_commit_with_the_callers_transaction(db_url: str) -> None:
    log = make_log(db_url)
    fill(log, 5)
    with Session(log.store.engine) as session, session.begin():
        indices = log.append_activities_in(session, [(record(5), {"owner_ref": "crm-9"})])
    assert indices == [5] and log.store.size() == 6
    stored = decode_record(log.store.entries(5, 6)[0].payload)
    assert isinstance(stored, ActivityRecord)
    assert b"crm-9" not in log.store.entries(5, 6)[0].payload
    assert open_commitment(stored, "owner_ref", "crm-9", log.store.salts(5)["owner_ref"])


@pytest.mark.parametrize("size", [3, 4, 16, 17])
def test_a_rolled_back_transaction_leaves_no_entry_salt_or_stale_hash(
    db_url: str, size: int
) -> None:
    log = make_log(db_url)
    fill(log, size)
    with Session(log.store.engine) as session:
        salts_before = _salts(session)
    with pytest.raises(_BusinessFailure), Session(log.store.engine) as session, session.begin():
        tried = [(record(100 + i), {"owner_ref": f"crm-{i}"}) for i in range(6)]
        assert log.append_activities_in(session, tried) == list(range(size, size + 6))
        raise _BusinessFailure
    assert log.store.size() == size
    with Session(log.store.engine) as session:
        assert _salts(session) == salts_before
    # Later appends take the same indices, and roots and proofs describe only what committed.
    fill(log, 9)
    entries = log.store.entries(0, size + 9)
    assert [e.index for e in entries] == list(range(size + 9))
    tree = MemoryTree([entry_leaf_hash(e.index, e.payload) for e in entries])
    assert log.store.root() == (size + 9, tree.root())
    proof = log.store.inclusion_proof(size, size + 9)
    proof.verify(entries[size].leaf_hash, tree.root())
