"""One run sends a claim's deliveries side by side, so a slow partner does not hold up others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from forecourt.cloud.integrations.delivery import DeliveryPolicy
from tests.cloud.test_webhooks import (  # noqa: F401 - receiver is a fixture
    Bench,
    Receiver,
    _bench,
    receiver,
)
from tests.cloud.world import CloudWorld


@pytest.fixture
def bench(world: CloudWorld, tmp_path: Path) -> Iterator[Bench]:
    with _bench(world, tmp_path) as made:
        yield made


def test_deliveries_of_one_claim_are_in_flight_at_the_same_time(
    bench: Bench,
    receiver: Receiver,  # noqa: F811
) -> None:
    first = bench.subscribe(receiver.url)
    second = bench.subscribe(receiver.url)
    bench.grant("crm-side-by-side")
    # Each request is held until the other has arrived: sent one after the other, the first
    # would wait out the barrier's timeout and break it.
    receiver.rendezvous = threading.Barrier(2)

    attempts = bench.dispatcher.run_once().attempts

    assert not receiver.rendezvous.broken
    assert sorted(a.subscription_id for a in attempts) == sorted([first["id"], second["id"]])
    assert [a.outcome for a in attempts] == ["delivered", "delivered"]
    assert len(set(receiver.ids())) == 1  # one event, the same webhook-id to both


def test_a_lease_shorter_than_a_claims_sends_is_refused() -> None:
    with pytest.raises(ValueError, match="lease must outlast"):
        DeliveryPolicy(claim_batch=20, concurrency=1, timeout_s=10, lease=timedelta(seconds=60))
    DeliveryPolicy(claim_batch=20, concurrency=8, timeout_s=10, lease=timedelta(seconds=60))
    with pytest.raises(ValueError):
        DeliveryPolicy(concurrency=0)
