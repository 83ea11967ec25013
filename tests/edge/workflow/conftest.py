"""A migrated edge database (edge + ledger branches), staff, a fake cloud, fake cars, services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from forecourt.core import ConsentChoice, ConsentRecord, DataCategory
from forecourt.edge.audit import EdgeAudit
from forecourt.edge.cloud_client import Assignment, FakeCloudClient, PackageRef
from forecourt.edge.offline import OfflineStock
from forecourt.edge.operators import OperatorPolicy, OperatorService, ReviewService, Role
from forecourt.edge.outbox import OutboxDispatcher
from forecourt.edge.workflow import (
    ActivationService,
    ConsentCapture,
    Dependencies,
    ProgressHub,
    WorkflowSettings,
    WorkflowStore,
)
from forecourt.ledger.audit import audit_store
from forecourt.ledger.checkpoint import SoftwareNoteSigner
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import MerkleLogStore
from forecourt.store.edge import EdgeWorkflowStep
from forecourt.store.engine import EDGE_BRANCHES, create_engine_for, migrate, session_factory
from forecourt.store.ledger import LedgerEntry
from tests.edge.operators.conftest import CHEAP, DEALER, FakeClock, Person, Staff
from tests.edge.workflow.fakes import VIN, Authoriser, FakeCar, FakeConnector, MemoryPackages

ORIGIN = "edge.dealer-a.forecourt.test"


@dataclass
class Env:
    engine: Engine
    sessions: sessionmaker[Session]
    clock: FakeClock
    operators: OperatorService
    reviews: ReviewService
    staff: Staff
    cloud: FakeCloudClient
    connector: FakeConnector
    packages: MemoryPackages
    log: TransparencyLog
    audit: EdgeAudit
    offline: OfflineStock
    car: FakeCar
    images: list[PackageRef]
    technician: Person
    senior: Person
    manager: Person
    services: list[ActivationService] = field(default_factory=list)

    def service(
        self,
        hook: Callable[[str], None] | None = None,
        *,
        link_retries: int = 3,
        max_parallel: int = 4,
    ) -> ActivationService:
        deps = Dependencies(
            store=WorkflowStore(self.sessions, self.audit),
            operators=self.operators,
            reviews=self.reviews,
            cloud=self.cloud,
            connector=self.connector,
            packages=self.packages,
            offline=self.offline,
            hub=ProgressHub(),
            clock=self.clock,
            hook=hook or (lambda _p: None),
        )
        service = ActivationService(
            deps, WorkflowSettings(DEALER, max_parallel=max_parallel, link_retries=link_retries)
        )
        self.services.append(service)
        return service

    def approve(self, review_id: str, reviewer: Person | None = None) -> None:
        person = reviewer or self.senior
        self.clock.advance(30)
        self.reviews.approve(person.operator, review_id, person.code())

    def ledger_is_whole(self) -> None:
        """Every step has exactly one ledger entry and the log audits clean."""
        self.log.issue_checkpoint()
        audit_store(self.log.store, self.log.verifier)
        with self.sessions() as s:
            steps = s.execute(select(func.count()).select_from(EdgeWorkflowStep)).scalar_one()
            indices = s.execute(select(EdgeWorkflowStep.ledger_index)).scalars().all()
            entries = s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
        assert len(set(indices)) == steps == entries


def consent() -> ConsentCapture:
    return ConsentCapture(
        record=ConsentRecord(
            notice_version="eu-2025.1",
            captured_at=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
            choices=(
                ConsentChoice(DataCategory.LOCATION, True),
                ConsentChoice(DataCategory.AUDIO_VOICE, False),
            ),
            cross_border=False,
        ),
        notice_id="privacy-notice",
        region="eu",
        subject_ref="crm:customer-42",
    )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path)


def make_env(tmp_path: Path) -> Iterator[Env]:
    """Everything a workflow test needs, torn down afterwards (used by sibling test modules)."""
    engine = create_engine_for(f"sqlite:///{(tmp_path / 'edge.sqlite3').as_posix()}")
    migrate(engine, EDGE_BRANCHES)
    sessions = session_factory(engine)
    clock = FakeClock()
    operators = OperatorService(
        sessions, clock=clock, policy=OperatorPolicy(max_failed_attempts=3), passwords=CHEAP
    )
    reviews = ReviewService(sessions, operators, clock=clock)
    staff = Staff(operators, clock)
    packages = MemoryPackages()
    images = [
        packages.add("ivi-os.img", bytes(range(256)) * 64, 0x1002),
        packages.add("cgw-config.bin", b"config" * 1000, 0x1000),
    ]
    cloud = FakeCloudClient(authorise_handler=Authoriser(images))
    cloud.assignments[VIN] = Assignment(VIN, DEALER, 0)
    car = FakeCar()
    log = TransparencyLog(MerkleLogStore(engine), ORIGIN, SoftwareNoteSigner.generate(), clock)
    env = Env(
        engine=engine,
        sessions=sessions,
        clock=clock,
        operators=operators,
        reviews=reviews,
        staff=staff,
        cloud=cloud,
        connector=FakeConnector(car),
        packages=packages,
        log=log,
        audit=EdgeAudit(log, "edge-a"),
        offline=OfflineStock(sessions, DEALER, clock=clock),
        car=car,
        images=images,
        technician=staff.hire(Role.TECHNICIAN),
        senior=staff.hire(Role.SENIOR_TECHNICIAN),
        manager=staff.hire(Role.SERVICE_MANAGER),
    )
    yield env
    for service in env.services:
        service.shutdown()
    engine.dispose()


def dispatcher(env: Env) -> OutboxDispatcher:
    return OutboxDispatcher(
        env.sessions, env.cloud, clock=env.clock, on_double_use=env.offline.mark_double_use
    )
