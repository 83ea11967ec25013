"""The outbox does not grow for ever: finished deliveries and their events go after the
retention; anything a partner could still receive (dead letters, pending retries) stays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forecourt.cloud.integrations.delivery import DeliveryPolicy
from forecourt.store.registry import OutboxEventRow, WebhookDeliveryRow
from tests.cloud.test_webhooks import (  # noqa: F401 - receiver is a fixture
    Bench,
    Receiver,
    _bench,
    receiver,
)
from tests.cloud.world import CloudWorld

RETENTION = timedelta(days=30)


@pytest.fixture
def bench(world: CloudWorld, tmp_path: Path) -> Iterator[Bench]:
    with _bench(world, tmp_path) as made:
        yield made


def _counts(bench: Bench) -> tuple[int, dict[str, int]]:
    with bench.world.context.db.transaction() as session:
        events = session.scalar(select(func.count()).select_from(OutboxEventRow)) or 0
        rows = session.execute(
            select(WebhookDeliveryRow.status, func.count()).group_by(WebhookDeliveryRow.status)
        )
        return events, {status: count for status, count in rows}


def test_finished_deliveries_and_their_events_are_pruned_after_the_retention_and_no_sooner(
    bench: Bench,
    receiver: Receiver,  # noqa: F811
) -> None:
    bench.subscribe(receiver.url)
    dispatcher = bench.dispatcher_with(DeliveryPolicy(max_attempts=1, retention=RETENTION))
    try:
        bench.grant("crm-delivered")
        assert [a.outcome for a in dispatcher.run_once().attempts] == ["delivered"]
        receiver.always = 503
        bench.grant("crm-dead")
        assert [a.outcome for a in dispatcher.run_once().attempts] == ["dead"]
        events_before, statuses = _counts(bench)
        assert statuses == {"delivered": 1, "dead": 1}

        bench.clock.now += RETENTION - timedelta(minutes=1)
        assert dispatcher.prune() == (0, 0)  # not yet
        bench.clock.now += timedelta(minutes=2)
        removed_deliveries, removed_events = dispatcher.prune()

        events_after, statuses = _counts(bench)
        assert removed_deliveries == 1
        assert statuses == {"dead": 1}  # a dead letter may still be redelivered: kept
        # the delivered event went; so did the seeded world's events no partner wanted
        assert removed_events >= 1 and events_after == events_before - removed_events
        with bench.world.context.db.transaction() as session:
            kept = session.scalars(
                select(WebhookDeliveryRow.event_seq).where(WebhookDeliveryRow.status == "dead")
            ).all()
            assert session.get(OutboxEventRow, kept[0]) is not None  # its event stays
        assert dispatcher.prune() == (0, 0)  # nothing more to forget
    finally:
        dispatcher.close()


def test_a_retention_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="retention"):
        DeliveryPolicy(retention=timedelta(0))
