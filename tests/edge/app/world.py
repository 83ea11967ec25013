"""A console over real services: SQLite in tmp_path, bootstrapped operators, the workflow with
in-memory cars (the workflow's own test car, honouring its CarConnector port) and the fake cloud.

Shared by the API tests (httpx ASGI transport) and the browser tests (uvicorn on 127.0.0.1:0).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from forecourt.core import Market
from forecourt.demo.data import generate_world
from forecourt.edge.app import (
    ConsoleSettings,
    DiscoveredCar,
    EdgeServices,
    StaticVehicleDirectory,
    create_app,
    feature_notices,
)
from forecourt.edge.cloud_client import Assignment
from forecourt.edge.operators import Role
from forecourt.edge.workflow import ActivationService
from forecourt.edge.workflow.consent import SubjectKey
from forecourt.http.serving import serve_in_thread
from tests.edge.operators.conftest import DEALER, OTHER_DEALER, FakeClock, Person
from tests.edge.workflow.conftest import Env, make_env
from tests.edge.workflow.fakes import OTHER_VIN, VIN, FakeCar

FOREIGN_VIN = "WVWZZZ1JZXW000003"


class WallClock(FakeClock):
    """The env's clock switched to wall time, for the browser, where codes follow real time."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        """Wall time moves by itself; callers use codes of neighbouring steps instead."""


@dataclass
class ConsoleWorld:
    env: Env
    services: EdgeServices
    app: FastAPI
    technician: Person
    senior: Person
    manager: Person
    auditor: Person
    admin: Person
    other_dealer_tech: Person
    activation: ActivationService
    #: A second dealer admin (granted as if reviewed), to decide what the first one requests.
    second_admin: Person
    extras: dict[str, object] = field(default_factory=dict)


def build_world(tmp_path: Path, *, real_time: bool = False) -> Iterator[ConsoleWorld]:
    for env in make_env(tmp_path):
        auditor = env.staff.hire(Role.AUDITOR)
        admin = env.staff.admin()
        other_dealer_tech = env.staff.hire(Role.TECHNICIAN, OTHER_DEALER)
        second_admin = env.staff.hire(Role.DEALER_ADMIN, username="second.admin")
        if real_time:
            # Every service holds this one clock object; switch it (this instance only). Staff
            # enrolled before, at the fake time, so every code from now on is a fresh step.
            env.clock.__class__ = WallClock
        env.connector.add(FakeCar(vin=OTHER_VIN, address="127.0.0.11"))
        env.connector.add(FakeCar(vin=FOREIGN_VIN, address="127.0.0.12"))
        env.cloud.assignments[OTHER_VIN] = Assignment(OTHER_VIN, DEALER, 0)
        env.cloud.assignments[FOREIGN_VIN] = Assignment(FOREIGN_VIN, OTHER_DEALER, 0)
        activation = env.service()
        env.audit.bind(env.sessions)  # as the edge's wiring does
        SubjectKey.load_or_create(tmp_path).bind(env.sessions)
        demo = generate_world(vehicles=0)
        services = EdgeServices(
            dealer_id=DEALER,
            edge_id="edge-a",
            profile=demo.profile(Market.EU),
            profile_version=3,
            sessions=env.sessions,
            operators=env.operators,
            reviews=env.reviews,
            activations=activation,
            ledger=env.log,
            offline=env.offline,
            vehicles=StaticVehicleDirectory(
                (
                    DiscoveredCar(VIN, "127.0.0.10", "Volta"),
                    DiscoveredCar(OTHER_VIN, "127.0.0.11", "Terra"),
                    DiscoveredCar(FOREIGN_VIN, "127.0.0.12", "Aura"),
                )
            ),
            features=feature_notices(demo.catalog, Market.EU),
            clock=env.clock,
        )
        app = create_app(services, ConsoleSettings(sse_keepalive_s=0.5))
        yield ConsoleWorld(
            env=env,
            services=services,
            app=app,
            technician=env.technician,
            senior=env.senior,
            manager=env.manager,
            auditor=auditor,
            admin=admin,
            other_dealer_tech=other_dealer_tech,
            activation=activation,
            second_admin=second_admin,
        )


def serve(app: FastAPI) -> AbstractContextManager[str]:
    """uvicorn on 127.0.0.1, port 0, in a thread; yields the base URL once it has started."""
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    return serve_in_thread(config, name="edge-console")
