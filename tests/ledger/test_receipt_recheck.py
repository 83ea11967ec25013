"""An edge re-checks its kept receipts against newer cloud checkpoints: a cloud that rewrote or
forked its log after giving a receipt is caught, and a refusal changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecourt.ledger.checkpoint import Checkpoint, SignedCheckpoint
from forecourt.ledger.errors import ConsistencyError, NoteError, ProofError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.logoflogs import CloudLogOfLogs, EdgeAnchor
from forecourt.ledger.merkle import ConsistencyProof
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.engine import create_engine_for
from tests.ledger.helpers import fill, make_log, migrate_ledger

CLOUD = "cloud.oem.example/log"


def _anchored(tmp_path: Path, cloud_url: str) -> tuple[CloudLogOfLogs, EdgeAnchor]:
    edge = make_log(f"sqlite:///{tmp_path / 'edge.sqlite3'}")
    cloud = CloudLogOfLogs(make_log(cloud_url, CLOUD))
    cloud.register_edge(edge.verifier)
    anchor = EdgeAnchor(edge, cloud.log.verifier)
    fill(edge, 5)
    anchor.anchor(cloud.submit)
    return cloud, anchor


def _impostor(cloud: CloudLogOfLogs, tmp_path: Path, name: str) -> TransparencyLog:
    """Another log under the cloud's origin and key: what a cloud showing a fork would sign."""
    engine = create_engine_for(f"sqlite:///{tmp_path / name}")
    migrate_ledger(engine)
    return TransparencyLog(MerkleLogStore(engine), CLOUD, cloud.log.signer)


def test_kept_receipt_rechecks_against_a_grown_cloud_log(sqlite_url: str, tmp_path: Path) -> None:
    cloud, anchor = _anchored(tmp_path, sqlite_url)
    first = anchor.receipts()[0]
    fill(anchor.log, 3)
    anchor.anchor(cloud.submit)
    newer = cloud.log.issue_checkpoint()
    proof = cloud.log.store.consistency_proof(1, newer.checkpoint.size)
    assert anchor.recheck(newer.render(), proof) == first
    assert anchor.recheck_all(newer.render(), cloud.log.store.consistency_proof) == 2


def test_recheck_against_the_same_checkpoint_needs_no_proof_hashes(
    sqlite_url: str, tmp_path: Path
) -> None:
    _, anchor = _anchored(tmp_path, sqlite_url)
    receipt = anchor.receipts()[0]
    assert anchor.recheck(receipt.cloud_checkpoint, ConsistencyProof(1, 1, ())) == receipt


def test_forked_cloud_log_is_refused(db_url: str, tmp_path: Path) -> None:
    cloud, anchor = _anchored(tmp_path, db_url)
    fork = _impostor(cloud, tmp_path, "fork.sqlite3")
    fork.store.append([b"another history", b"and more"])
    forked = fork.issue_checkpoint()
    with pytest.raises(ConsistencyError, match="does not extend"):
        anchor.recheck(forked.render(), fork.store.consistency_proof(1, 2))
    same_size = _impostor(cloud, tmp_path, "same.sqlite3")
    same_size.store.append([b"one other entry"])
    with pytest.raises(ConsistencyError, match="fork"):
        anchor.recheck(same_size.issue_checkpoint().render(), ConsistencyProof(1, 1, ()))
    assert len(anchor.receipts()) == 1


def test_rolled_back_cloud_checkpoint_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    cloud, anchor = _anchored(tmp_path, sqlite_url)
    fill(anchor.log, 1)
    receipt = anchor.anchor(cloud.submit)
    older = cloud.log.store.root(1)
    rollback = SignedCheckpoint.issue(Checkpoint(CLOUD, *older), cloud.log.signer)
    with pytest.raises(ConsistencyError, match="rollback"):
        anchor.recheck(rollback.render(), ConsistencyProof(2, 1, ()), receipt)


def test_checkpoint_not_signed_by_the_cloud_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    _, anchor = _anchored(tmp_path, sqlite_url)
    stranger = make_log(f"sqlite:///{tmp_path / 's.sqlite3'}", CLOUD)
    stranger.store.append([b"x", b"y"])
    with pytest.raises(NoteError):
        anchor.recheck(stranger.issue_checkpoint().render(), stranger.store.consistency_proof(1))


def test_proof_for_other_sizes_or_no_matching_receipt_is_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    cloud, anchor = _anchored(tmp_path, sqlite_url)
    cloud.log.store.append([b"a", b"b"])
    newer = cloud.log.issue_checkpoint()
    receipt = anchor.receipts()[0]
    with pytest.raises(ProofError, match="from 1 to 3"):
        anchor.recheck(newer.render(), cloud.log.store.consistency_proof(2, 3), receipt)
    with pytest.raises(ProofError, match="no kept receipt"):
        anchor.recheck(newer.render(), cloud.log.store.consistency_proof(2, 3))
