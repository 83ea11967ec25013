"""Builders shared by the ledger tests."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine

from forecourt.ledger.checkpoint import SoftwareNoteSigner
from forecourt.ledger.entry import ActivityRecord, EventKind, NetworkEnvironment
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.engine import alembic_config, create_engine_for

VIN = "WVWZZZ1JZXW000001"


def record(i: int) -> ActivityRecord:
    return ActivityRecord(
        timestamp=datetime(2025, 1, 1, 12, 0, i % 60, tzinfo=UTC),
        kind=list(EventKind)[i % len(EventKind)],
        vin=VIN,
        dealer_id="D-001",
        edge_id="edge-001",
        network=NetworkEnvironment.ONLINE,
        response_status="ok",
        features=(f"feature-{i}",),
        package_versions={"maps-eu": "2025.1"},
        evidence_hashes=("ab" * 32,),
    )


def migrate_ledger(engine: Engine) -> None:
    """``forecourt.store.engine.migrate(engine, ["ledger"])`` with ``path_separator`` set:
    Alembic 1.16+ otherwise warns, and this suite turns warnings into errors."""
    cfg = alembic_config(engine)
    cfg.set_main_option("path_separator", "os")
    command.upgrade(cfg, "ledger@head")


def make_log(url: str, origin: str = "edge-001.dealer.example/log") -> TransparencyLog:
    engine = create_engine_for(url)
    migrate_ledger(engine)
    return TransparencyLog(MerkleLogStore(engine), origin, SoftwareNoteSigner.generate())


def fill(log: TransparencyLog, n: int, batch: int = 7) -> None:
    done = 0
    while done < n:
        k = min(batch, n - done)
        log.append_activities(
            [(record(done + i), {"operator_id": f"op-{done + i}"}) for i in range(k)]
        )
        done += k
