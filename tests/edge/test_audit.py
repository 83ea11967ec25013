"""Audit: steps in the edge ledger; checkpoints anchored in the cloud log of logs via the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecourt.edge import cli as edge_cli
from forecourt.edge.audit import DealerFacts, EdgeAudit
from forecourt.edge.operators import OperatorService, bootstrap_first_admin
from forecourt.edge.outbox import LEDGER_CHECKPOINT, OutboxDispatcher
from forecourt.ledger.checkpoint import SoftwareNoteSigner
from forecourt.ledger.entry import (
    DealerEventKind,
    DealerEventRecord,
    decode_record,
    open_commitment,
)
from forecourt.ledger.errors import EntryError
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.logoflogs import CloudLogOfLogs, Receipt
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.engine import create_engine_for, migrate, session_factory
from tests.edge.operators.conftest import CHEAP, PASSWORD
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


# -- dealer-level events -------------------------------------------------------------------------


def _dealer_events(log: TransparencyLog) -> list[tuple[int, DealerEventRecord]]:
    out = []
    for e in log.store.entries(0, log.store.size()):
        record = decode_record(e.payload)
        if isinstance(record, DealerEventRecord):
            out.append((e.index, record))
    return out


def test_an_audit_bound_after_the_operators_service_was_built_still_ledgers_its_changes(
    tmp_path: Path,
) -> None:
    """The edge's wiring builds the operators service first and binds the ledger after."""
    engine = create_engine_for(f"sqlite:///{(tmp_path / 'edge.sqlite3').as_posix()}")
    migrate(engine, ("edge", "ledger"))
    sessions = session_factory(engine)
    operators = OperatorService(sessions, passwords=CHEAP)
    log = TransparencyLog(MerkleLogStore(engine), "edge.test", SoftwareNoteSigner.generate())
    EdgeAudit(log, "edge-a").bind(sessions)
    admin = bootstrap_first_admin(operators, "dealer-a", password=PASSWORD)
    [(index, record)] = _dealer_events(log)
    assert (record.kind, record.edge_id, record.role) == (
        DealerEventKind.OPERATOR_CREATED, "edge-a", "dealer_admin",
    )  # fmt: skip
    salt = log.store.salts(index)["subject_id"]
    assert open_commitment(record, "subject_id", admin.operator_id, salt)
    engine.dispose()


def test_facts_no_dealer_record_can_hold_roll_the_change_back(env: Env) -> None:
    size = env.log.store.size()
    facts = DealerFacts(
        timestamp=env.clock(),
        kind=DealerEventKind.REVIEW_APPROVED,  # a review decision that names no review
        dealer_id="dealer-a",
        evidence={"event": "review-approved"},
        actor_id="someone",
    )
    with pytest.raises(EntryError, match="must name the review"), env.sessions.begin() as s:
        env.audit.record_dealer_in(s, facts)
    assert env.log.store.size() == size


def test_edge_operator_bootstrap_ledgers_the_first_admin_in_the_edge_log(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("correct horse battery staple\n")
    url = f"sqlite:///{(tmp_path / 'edge' / 'edge.sqlite3').as_posix()}"
    result = CliRunner().invoke(
        edge_cli.app,
        [
            "operator", "bootstrap", "--dealer-id", "DE-MUC-01", "--data-dir",
            str(tmp_path / "edge"), "--database-url", url, "--password-file", str(password),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    engine = create_engine_for(url)
    log = TransparencyLog(MerkleLogStore(engine), "edge.test", SoftwareNoteSigner.generate())
    [(index, record)] = _dealer_events(log)
    assert (record.kind, record.dealer_id, record.edge_id) == (
        DealerEventKind.OPERATOR_CREATED, "DE-MUC-01", "edge-de-muc-01",
    )  # fmt: skip
    assert set(log.store.salts(index)) == {"actor_id", "subject_id"}
    engine.dispose()
