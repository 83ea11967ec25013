"""Offline activation: stock pulled ahead, used once after an offline_use review, reconciled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from forecourt.edge.offline import PackageState
from forecourt.edge.operators import ReviewKind
from forecourt.edge.outbox import OFFLINE_PACKAGE_USED
from forecourt.edge.workflow import FailureCode, WorkflowState
from forecourt.ledger.entry import EventKind, decode_record
from forecourt.store.edge import EdgeOfflinePackage
from tests.edge.workflow.conftest import Env, dispatcher, make_env
from tests.edge.workflow.fakes import VIN, offline_offer


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path)


S = WorkflowState


def stock(env: Env, package_id: str = "pkg-1", counter: int = 5) -> None:
    now = env.clock()
    env.cloud.stock.append(
        offline_offer(
            package_id,
            vin=VIN,
            counter=counter,
            images=env.images,
            not_before=now - timedelta(hours=1),
            not_after=now + timedelta(days=2),
        )
    )
    env.offline.refill(env.cloud)


def test_refill_is_idempotent(env: Env) -> None:
    stock(env)
    assert env.offline.refill(env.cloud) == 0
    assert [p.package_id for p in env.offline.stock()] == ["pkg-1"]


def test_cloud_down_activates_from_stock_after_offline_review(env: Env) -> None:
    stock(env)
    env.cloud.online = False
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = service.wait(wf_id)
    assert wf.state is S.AWAITING_REVIEW and wf.offline
    review_id = wf.context["reviews"][ReviewKind.OFFLINE_USE.value]["id"]
    env.approve(review_id)
    service.review_decided(wf_id)
    wf = service.wait(wf_id)
    assert wf.state is S.DONE, wf.error_detail
    assert env.car.counter == 5 and env.car.applies == 1
    [package] = env.offline.stock()
    assert package.state is PackageState.USED
    with env.sessions() as s:
        row = s.execute(select(EdgeOfflinePackage)).scalar_one()
        assert row.review_request_id == review_id
    kinds = [decode_record(e.payload).kind for e in env.log.store.entries(0, 1000)]  # type: ignore[union-attr]
    assert EventKind.OFFLINE_USE in kinds
    env.ledger_is_whole()


def test_no_package_in_stock_refuses_offline_without_bothering_a_reviewer(env: Env) -> None:
    env.cloud.online = False
    service = env.service()
    wf = service.wait(service.start(env.technician.operator, vin=VIN, features=["nav"]))
    assert wf.state is S.REFUSED and wf.error_code == FailureCode.NO_OFFLINE_PACKAGE
    assert "reviews" not in wf.context


def test_expired_package_is_never_handed_out(env: Env) -> None:
    stock(env)
    env.clock.advance(timedelta(days=3).total_seconds())
    env.cloud.online = False
    service = env.service()
    wf = service.wait(service.start(env.technician.operator, vin=VIN, features=["nav"]))
    assert wf.error_code == FailureCode.NO_OFFLINE_PACKAGE
    assert env.offline.expire_due() == 1


def test_package_with_counter_not_above_the_car_is_refused_before_transfer(env: Env) -> None:
    stock(env, counter=2)
    env.car.counter = 2  # (also needs a reactivation review)
    env.cloud.online = False
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    wf = service.wait(wf_id)
    for review in wf.context["reviews"].values():
        env.approve(review["id"])
    service.review_decided(wf_id)
    wf = service.wait(wf_id)
    assert wf.error_code == FailureCode.OFFLINE_PACKAGE_STALE
    assert env.car.sent_bytes == 0
    assert env.offline.stock()[0].state is PackageState.AVAILABLE  # the claim rolled back


def test_reconciliation_pushes_the_use_once_and_a_double_use_is_surfaced(env: Env) -> None:
    stock(env)
    env.cloud.online = False
    service = env.service()
    wf_id = service.start(env.technician.operator, vin=VIN, features=["nav"])
    review_id = service.wait(wf_id).context["reviews"]["offline_use"]["id"]
    env.approve(review_id)
    service.review_decided(wf_id)
    assert service.wait(wf_id).state is S.DONE
    out = dispatcher(env)
    assert out.drain().unreachable  # still offline: everything stays queued
    env.cloud.online = True
    env.clock.advance(3600)
    env.cloud.offline_uses["pkg-1"] = ["a-workflow-on-another-edge"]
    report = out.drain()
    assert out.pending_count() == 0
    assert [d.package_id for d in report.double_uses] == ["pkg-1"]
    assert [p.package_id for p in env.offline.double_uses()] == ["pkg-1"]
    assert len(env.cloud.events_of_type(OFFLINE_PACKAGE_USED)) == 1
    assert out.drain().sent == 0  # reconciliation again changes nothing
