"""A seeded edge database for transparency reports: real workflows (fake cars and cloud), real
consent desk rows, real reviews and sign-ins, all in the first quarter of 2025 (the env's clock
starts on 2025-03-01), so the report for Q1 2025 has known figures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from forecourt.core import DataCategory, Market
from forecourt.demo.data import generate_world
from forecourt.edge.app.consent import ConsentAnswers, ConsentDesk
from forecourt.edge.app.notices import category_texts
from forecourt.edge.cloud_client import Assignment, CloudRefused
from forecourt.edge.operators import ReviewKind, Role
from forecourt.edge.transparency import Period, ProfileInForce, TransparencyReports
from forecourt.edge.workflow import WorkflowState
from forecourt.edge.workflow.consent import SubjectKey
from tests.edge.operators.conftest import DEALER, Person
from tests.edge.workflow.conftest import Env, dispatcher, make_env
from tests.edge.workflow.fakes import FakeCar

Q1_2025 = Period(date(2025, 1, 1), date(2025, 4, 1))
#: Six cars of this dealer, each activated once (VINs: must never appear in a report).
VINS = tuple(f"WVWZZZ1JZXW1000{i:02d}" for i in range(6))
REFUSED_VIN = "WVWZZZ1JZXW100099"
CUSTOMERS = tuple(f"crm:customer-{i}" for i in range(6))


@dataclass
class Seeded:
    env: Env
    reports: TransparencyReports
    auditor: Person
    subject_pseudonyms: tuple[str, ...]
    operator_ids: tuple[str, ...]
    usernames: tuple[str, ...]
    tmp_path: Path


def purposes() -> dict[str, str]:
    texts, _ = category_texts("en")
    return {c.value: t.purpose for c, t in texts.items()}


def seed(tmp_path: Path) -> Iterator[Seeded]:
    for env in make_env(tmp_path):
        env.audit.bind(env.sessions)
        key = SubjectKey.load_or_create(tmp_path)
        key.bind(env.sessions)
        auditor = env.staff.hire(Role.AUDITOR)
        profile = generate_world(vehicles=0).profile(Market.EU)
        desk = ConsentDesk(env.sessions, profile, DEALER, "privacy-notice")
        service = env.service()
        for i, vin in enumerate(VINS):
            env.connector.add(FakeCar(vin=vin, address=f"127.0.1.{i + 1}"))
            env.cloud.assignments[vin] = Assignment(vin, DEALER, 0)
            features = ["nav", "voice"] if i == 0 else ["nav"]
            wf = service.wait(service.start(env.technician.operator, vin=vin, features=features))
            assert wf.state is WorkflowState.DONE, wf.error_detail
            env.clock.advance(60)
        # Two refusals by the cloud, one car that does not answer.
        env.connector.add(FakeCar(vin=REFUSED_VIN, address="127.0.1.99"))
        env.cloud.assignments[REFUSED_VIN] = Assignment(REFUSED_VIN, DEALER, 0)
        env.cloud.refusal = CloudRefused("authorise", 403, ("not_entitled",))
        for _ in range(2):
            wf = service.wait(service.start(env.senior.operator, vin=REFUSED_VIN, features=["x"]))
            assert wf.state is WorkflowState.REFUSED
            env.clock.advance(60)
        env.cloud.refusal = None
        env.connector.cars["127.0.1.99"].reachable = False
        wf = service.wait(service.start(env.technician.operator, vin=REFUSED_VIN, features=["nav"]))
        assert wf.state is WorkflowState.FAILED
        # Consent on the desk: six grants of location (with cross-border denied), then five
        # withdrawals, three of them already pushed to the cloud; one first refusal of voice.
        for vin, customer in zip(VINS, CUSTOMERS, strict=True):
            desk.record(
                ConsentAnswers(
                    vin,
                    customer,
                    profile.notice_version,
                    "en",
                    {DataCategory.LOCATION: True},
                    cross_border=False,
                ),
                env.technician.operator.id,
                env.clock(),
            )
            env.clock.advance(10)
        desk.record(
            ConsentAnswers(
                VINS[0],
                CUSTOMERS[0],
                profile.notice_version,
                "en",
                {DataCategory.AUDIO_VOICE: False},
            ),
            env.technician.operator.id,
            env.clock(),
        )
        for n, vin in enumerate(VINS[:5]):
            if n == 3:
                dispatcher(env).drain()
            env.clock.advance(10)
            desk.record(
                ConsentAnswers(
                    vin, "", profile.notice_version, "en", {DataCategory.LOCATION: False}
                ),
                env.manager.operator.id,
                env.clock(),
            )
        # One batch review requested by the senior and rejected by the manager.
        review = env.reviews.request(
            env.senior.operator,
            ReviewKind.BATCH_ACTIVATION,
            {"batch_id": "b-1", "workflow_ids": [], "cars": list(VINS), "features": ["nav"]},
            dealer_id=DEALER,
            reason="fleet",
        )
        env.clock.advance(30)
        env.reviews.reject(env.manager.operator, review.id, note="not today")
        env.clock.advance(30)
        env.operators.login(DEALER, auditor.operator.username, auditor.password, auditor.code())
        env.log.issue_checkpoint()
        pseudonyms = tuple(key.pseudonym(c) for c in CUSTOMERS)
        people = (env.technician, env.senior, env.manager, auditor)
        yield Seeded(
            env=env,
            reports=TransparencyReports(
                env.sessions,
                DEALER,
                ProfileInForce(profile, 7),
                purposes=purposes(),
                ledger=env.log,
            ),
            auditor=auditor,
            subject_pseudonyms=pseudonyms,
            operator_ids=tuple(p.operator.id for p in people),
            usernames=tuple(p.operator.username for p in people),
            tmp_path=tmp_path,
        )


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    yield from seed(tmp_path)
