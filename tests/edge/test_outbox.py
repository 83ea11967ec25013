"""Transactional outbox: written with the change, delivered exactly once as the cloud sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forecourt.edge.cloud_client import CloudRefused, OutgoingEvent, SyncOutcome
from forecourt.edge.outbox import OutboxDispatcher, enqueue
from forecourt.store.edge import EdgeConsentRecord, EdgeOutboxMessage
from tests.edge.workflow.conftest import Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path)


def put(env: Env, n: int) -> list[str]:
    with env.sessions.begin() as s:
        return [enqueue(s, "test.event.v1", {"n": i}, now=env.clock()) for i in range(n)]


def test_message_rolls_back_with_the_change_it_reports(env: Env) -> None:
    with pytest.raises(RuntimeError), env.sessions.begin() as s:
        enqueue(s, "test.event.v1", {"n": 1}, now=env.clock())
        raise RuntimeError("the business change failed")
    with env.sessions() as s:
        assert s.execute(select(func.count()).select_from(EdgeOutboxMessage)).scalar_one() == 0


def test_pending_messages_are_delivered_in_order_once(env: Env) -> None:
    ids = put(env, 5)
    out = OutboxDispatcher(env.sessions, env.cloud, clock=env.clock, batch_size=2)
    report = out.drain()
    assert report.sent == 5 and out.pending_count() == 0
    assert list(env.cloud.received) == ids
    assert out.drain().sent == 0


def test_failed_push_is_retried_after_backoff_and_delivered_once(env: Env) -> None:
    put(env, 3)
    env.cloud.fail_pushes = 1
    out = OutboxDispatcher(env.sessions, env.cloud, clock=env.clock)
    assert out.drain().retried == 3
    assert out.drain().sent == 0  # not due yet: backoff pushed next_attempt_at back
    env.clock.advance(10)
    assert out.drain().sent == 3
    assert env.cloud.deliveries == 3


class LostAnswerCloud:
    """The cloud stores the events but the answer is lost on the way back, once."""

    def __init__(self, env: Env) -> None:
        self.inner = env.cloud
        self.lose = True

    def push_events(self, events: list[OutgoingEvent]) -> SyncOutcome:
        outcome = self.inner.push_events(events)
        if self.lose:
            self.lose = False
            from forecourt.edge.cloud_client import CloudUnreachable

            raise CloudUnreachable("push_events", "answer lost")
        return outcome


def test_repeat_after_a_lost_answer_is_a_duplicate_not_a_second_delivery(env: Env) -> None:
    put(env, 2)
    out = OutboxDispatcher(env.sessions, LostAnswerCloud(env), clock=env.clock)  # type: ignore[arg-type]
    out.drain()
    env.clock.advance(10)
    report = out.drain()
    assert (report.sent, report.duplicates) == (0, 2)
    assert env.cloud.deliveries == 2 and out.pending_count() == 0


def test_rejected_message_is_dead_and_listed_never_retried(env: Env) -> None:
    [event_id] = put(env, 1)

    def reject(_event: OutgoingEvent) -> None:
        raise CloudRefused("x", 422, ("schema_invalid",))

    out = OutboxDispatcher(
        env.sessions, env.cloud, clock=env.clock, handlers={"test.event.v1": reject}
    )
    assert out.drain().dead == 1
    [dead] = out.dead()
    assert dead.event_id == event_id and dead.error == "schema_invalid"
    env.clock.advance(3600)
    assert out.drain().dead == 0 and out.pending_count() == 0


def test_consent_rows_and_their_message_commit_together(env: Env) -> None:
    from tests.edge.workflow.conftest import consent
    from tests.edge.workflow.fakes import VIN

    service = env.service()
    service.wait(
        service.start(env.technician.operator, vin=VIN, features=["nav"], consent=consent())
    )
    with env.sessions() as s:
        rows = s.execute(select(func.count()).select_from(EdgeConsentRecord)).scalar_one()
    out = OutboxDispatcher(env.sessions, env.cloud, clock=env.clock)
    out.drain()
    [event] = env.cloud.events_of_type("forecourt.edge.consent.recorded.v1")
    assert len(event["data"]["record_ids"]) == rows == 3
