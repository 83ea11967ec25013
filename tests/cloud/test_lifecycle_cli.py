"""``forecourt cloud lifecycle``: the same change as the API, from the database, on SQLite and
PostgreSQL; a refusal exits 1 with its problem code and appends nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.core import LifecycleState
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.registry import VehicleRow
from tests.cloud.world import CloudWorld

runner = CliRunner()


@pytest.fixture
def store(world: CloudWorld) -> Iterator[MerkleLogStore]:
    opened = MerkleLogStore(world.context.db.engine)
    yield opened
    opened.close()


def _state(world: CloudWorld, vin: str) -> str:
    with Session(world.context.db.engine) as session:
        row = session.get(VehicleRow, vin)
        assert row is not None
        return row.state


def test_the_command_line_moves_a_car_and_refuses_an_illegal_edge(
    world: CloudWorld, store: MerkleLogStore
) -> None:
    car = next(c for c in world.demo.vehicles if c.state is LifecycleState.AT_DEALER)
    vin, url = str(car.vin), world.config.database_url
    size = store.size()
    base = ["cloud", "lifecycle", vin, "--database-url", url]
    refused = runner.invoke(app, [*base, "--to", "delivered", "--owner", "crm-1"])
    assert refused.exit_code == 1
    assert "lifecycle_transition_not_allowed" in refused.output
    assert store.size() == size
    moved = runner.invoke(app, [*base, "--to", "activated"])
    assert moved.exit_code == 0, moved.output
    assert _state(world, vin) == "activated"
    assert store.size() == size + 1
