"""Audit: steps in the edge ledger; checkpoints anchored in the cloud log of logs via the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecourt.edge.outbox import LEDGER_CHECKPOINT, OutboxDispatcher
from forecourt.ledger.checkpoint import SoftwareNoteSigner
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.logoflogs import CloudLogOfLogs, Receipt
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.engine import create_engine_for, migrate
from tests.edge.workflow.conftest import Env, make_env
from tests.edge.workflow.fakes import VIN


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path)


def cloud_log(env: Env, tmp_path) -> CloudLogOfLogs:  # type: ignore[no-untyped-def]
    engine = create_engine_for(f"sqlite:///{(tmp_path / 'cloud.sqlite3').as_posix()}")
    migrate(engine, ("ledger",))
    log = TransparencyLog(
        MerkleLogStore(engine), "cloud.forecourt.test", SoftwareNoteSigner.generate(), env.clock
    )
    lol = CloudLogOfLogs(log)
    lol.register_edge(env.log.verifier)
    return lol


def test_checkpoints_are_anchored_through_the_outbox_with_verified_receipts(
    env: Env, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    lol = cloud_log(env, tmp_path)
    env.cloud.submit = lol.submit
    service = env.service()
    service.wait(service.start(env.technician.operator, vin=VIN, features=["nav"]))
    env.audit.queue_checkpoint(env.sessions, env.clock())
    service.wait(
        service.start(env.technician.operator, vin=VIN, features=["nav"])
    )  # re-activation waits
    env.audit.queue_checkpoint(env.sessions, env.clock())
    out = OutboxDispatcher(
        env.sessions,
        env.cloud,
        clock=env.clock,
        handlers={
            LEDGER_CHECKPOINT: env.audit.checkpoint_handler(
                env.sessions, env.cloud, lol.log.verifier
            ),
        },
    )
    out.drain()
    receipts = [Receipt.from_json(r) for r in env.audit.receipts(env.sessions)]
    assert len(receipts) == 2
    for receipt in receipts:
        receipt.verify(lol.log.verifier)
    assert len(env.cloud.checkpoints) == 2  # the second came with a consistency proof


def test_checkpoint_held_offline_is_anchored_when_the_link_returns(env: Env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lol = cloud_log(env, tmp_path)
    env.cloud.submit = lol.submit
    env.cloud.online = False
    note = env.audit.queue_checkpoint(env.sessions, env.clock())
    out = OutboxDispatcher(
        env.sessions,
        env.cloud,
        clock=env.clock,
        handlers={
            LEDGER_CHECKPOINT: env.audit.checkpoint_handler(
                env.sessions, env.cloud, lol.log.verifier
            ),
        },
    )
    assert out.drain().retried == 1
    env.cloud.online = True
    env.clock.advance(60)
    assert out.drain().sent == 1
    [receipt] = env.audit.receipts(env.sessions)
    assert receipt["edge_checkpoint"] == note


def test_receipt_signed_by_an_unknown_cloud_key_is_refused_and_not_kept(env: Env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lol = cloud_log(env, tmp_path)
    env.cloud.submit = lol.submit
    impostor = TransparencyLog(
        MerkleLogStore(env.engine), "cloud.forecourt.test", SoftwareNoteSigner.generate()
    )
    env.audit.queue_checkpoint(env.sessions, env.clock())
    out = OutboxDispatcher(
        env.sessions,
        env.cloud,
        clock=env.clock,
        handlers={
            LEDGER_CHECKPOINT: env.audit.checkpoint_handler(
                env.sessions, env.cloud, impostor.verifier
            ),
        },
    )
    assert out.drain().dead == 1
    assert env.audit.receipts(env.sessions) == []
    assert out.dead()[0].error == "receipt_invalid"


def test_personal_fields_reach_the_ledger_only_as_commitments(env: Env) -> None:
    service = env.service()
    service.wait(
        service.start(env.technician.operator, vin=VIN, features=["nav"], client_address="10.1.2.3")
    )
    for entry in env.log.store.entries(0, 100):
        body = json.loads(entry.payload)
        assert env.technician.operator.id not in entry.payload.decode()
        assert "10.1.2.3" not in entry.payload.decode()  # in the hashed evidence, not the leaf
        assert set(body["commitments"]) <= {"operator_id", "reviewer_id"}
