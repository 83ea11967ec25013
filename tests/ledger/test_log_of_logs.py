"""Log of logs: edges anchor checkpoints in the cloud log and keep verifiable receipts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from forecourt.ledger.api import create_ledger_router
from forecourt.ledger.checkpoint import Checkpoint, SignedCheckpoint
from forecourt.ledger.errors import ConsistencyError, NoteError, UnknownKeyError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.logoflogs import CloudLogOfLogs, EdgeAnchor, Receipt
from forecourt.ledger.merkle import leaf_hash
from forecourt.ledger.repository import leaf_input
from forecourt.ledger.wire import b64d, consistency_from_json, inclusion_from_json
from tests.ledger.helpers import fill, make_log


def _pair(tmp_path: Path, cloud_url: str) -> tuple[TransparencyLog, CloudLogOfLogs, EdgeAnchor]:
    edge = make_log(f"sqlite:///{tmp_path / 'edge.sqlite3'}")
    cloud = CloudLogOfLogs(make_log(cloud_url, "cloud.oem.example/log"))
    cloud.register_edge(edge.verifier)
    return edge, cloud, EdgeAnchor(edge, cloud.log.verifier)


def test_anchored_checkpoints_yield_receipts_that_verify_offline(
    db_url: str, tmp_path: Path
) -> None:
    edge, cloud, anchor = _pair(tmp_path, db_url)
    fill(edge, 5)
    first = anchor.anchor(cloud.submit)
    fill(edge, 6)
    second = anchor.anchor(cloud.submit)
    assert (first.cloud_index, second.cloud_index) == (0, 1)
    kept = anchor.receipts()
    assert kept == [first, second]
    for r in kept:
        assert Receipt.from_json(r.to_json()) == r
        r.verify(cloud.log.verifier)


def test_rollback_fork_and_missing_proof_are_refused_and_log_unchanged(
    db_url: str, tmp_path: Path
) -> None:
    edge, cloud, anchor = _pair(tmp_path, db_url)
    fill(edge, 8)
    anchor.anchor(cloud.submit)
    size_before = cloud.log.store.size()
    forked = SignedCheckpoint.issue(Checkpoint(edge.origin, 8, b"\x01" * 32), edge.signer)
    with pytest.raises(ConsistencyError, match="fork"):
        cloud.submit(forked.render())
    rollback = SignedCheckpoint.issue(
        Checkpoint(edge.origin, 3, edge.store.root(3)[1]), edge.signer
    )
    with pytest.raises(ConsistencyError, match="rollback"):
        cloud.submit(rollback.render())
    fill(edge, 2)
    with pytest.raises(ConsistencyError, match="consistency proof"):
        cloud.submit(edge.issue_checkpoint().render())
    rewritten = SignedCheckpoint.issue(Checkpoint(edge.origin, 10, b"\x02" * 32), edge.signer)
    with pytest.raises(ConsistencyError):
        cloud.submit(rewritten.render(), edge.store.consistency_proof(8, 10))
    assert cloud.log.store.size() == size_before


def test_checkpoint_from_unknown_edge_or_wrong_key_is_refused(db_url: str, tmp_path: Path) -> None:
    edge, cloud, _ = _pair(tmp_path, db_url)
    stranger = make_log(f"sqlite:///{tmp_path / 's.sqlite3'}", "stranger.example/log")
    with pytest.raises(UnknownKeyError):
        cloud.submit(stranger.issue_checkpoint().render())
    impostor = TransparencyLog(stranger.store, edge.origin, stranger.signer)
    with pytest.raises(NoteError):
        cloud.submit(impostor.issue_checkpoint().render())
    assert cloud.log.store.size() == 0


def test_api_serves_checkpoint_entries_and_proofs_that_verify(db_url: str, tmp_path: Path) -> None:
    edge, cloud, _ = _pair(tmp_path, db_url)
    fill(edge, 13)
    app = FastAPI()
    app.include_router(create_ledger_router(edge), prefix="/v1/ledger")
    app.include_router(create_ledger_router(cloud.log, cloud), prefix="/v1/cloud-ledger")
    asyncio.run(_exercise_api(app, edge, cloud))


async def _exercise_api(app: FastAPI, edge: TransparencyLog, cloud: CloudLogOfLogs) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger.test") as client:
        note = (await client.get("/v1/ledger/checkpoint")).text
        cp = SignedCheckpoint.open(note, edge.verifier).checkpoint
        assert cp.size == 13
        got = await client.get("/v1/ledger/entries", params={"start": 0, "end": 13})
        entries = got.json()
        assert [e["index"] for e in entries] == list(range(13))
        got = await client.get("/v1/ledger/proof/inclusion", params={"index": 4, "tree_size": 13})
        proof = inclusion_from_json(got.json())
        payload = b64d(entries[4]["payload"], "payload")
        proof.verify(leaf_hash(leaf_input(4, payload)), cp.root_hash)
        url_safe = entries[4]["leaf_hash"].replace("+", "-").replace("/", "_")
        got = await client.get(
            "/v1/ledger/proof/inclusion", params={"leaf_hash": url_safe, "tree_size": 13}
        )
        assert inclusion_from_json(got.json()) == proof
        got = await client.get("/v1/ledger/proof/consistency", params={"first": 5, "second": 13})
        consistency_from_json(got.json()).verify(edge.store.root(5)[1], cp.root_hash)
        got = await client.get("/v1/ledger/proof/inclusion", params={"index": 13, "tree_size": 13})
        assert got.status_code == 404
        sub = await client.post("/v1/cloud-ledger/checkpoints", json={"checkpoint": note})
        assert sub.status_code == 200
        Receipt.from_json(sub.json()).verify(cloud.log.verifier)
        forged = note.replace("\n13\n", "\n14\n")
        sub = await client.post("/v1/cloud-ledger/checkpoints", json={"checkpoint": forged})
        assert sub.status_code == 422
