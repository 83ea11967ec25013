"""N edges asking for one car at the same instant on PostgreSQL: exactly one bundle."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.cloud.conftest import Clients
from tests.cloud.world import CloudWorld, build_world

N = 8


@pytest.fixture
def world(pg_url: str) -> CloudWorld:  # overrides the SQLite + PostgreSQL fixture
    return build_world(pg_url)


def test_simultaneous_authorisations_for_one_vin_yield_exactly_one_bundle(
    world: CloudWorld, clients: Clients
) -> None:
    car, features = world.activatable()
    edges = [clients.dealer(car.dealer_id or "") for _ in range(N)]
    bodies = [world.request(car, features) for _ in range(N)]
    start = threading.Barrier(N)

    def ask(index: int) -> tuple[int, str]:
        start.wait()
        response = edges[index].post("/v1/activations", json=bodies[index])
        return response.status_code, response.json().get("code", "")

    with ThreadPoolExecutor(N) as pool:
        answers = list(pool.map(ask, range(N)))
    assert sorted(status for status, _ in answers) == [201] + [409] * (N - 1)
    assert {code for status, code in answers if status == 409} == {"activation_in_progress"}
    with world.context.db.sessions() as session:
        from forecourt.store.registry import ActivationRow

        issued = session.query(ActivationRow).filter_by(vin=str(car.vin), status="issued").count()
    assert issued == 1
