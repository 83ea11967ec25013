"""A whole local deployment in one process: the product's own "everything on this machine".

``forecourt demo``, the demo tests and ``bench/bench_edge.py`` all assemble the same thing here:

1. the OEM PKI and the cloud's role keys (:mod:`forecourt.demo.cloud`), the registry seeded from
   the deterministic demo world, package bytes in the blob store; the cloud served over mutual
   TLS (default ``127.0.0.1:8443``);
2. a fleet of simulated cars of one dealer (:mod:`forecourt.demo.fleet`), factory-provisioned
   with the cloud's exported repository roots, each a DoIP entity on ``127.<base>.0.x:13400``;
3. that dealer's edge built by :func:`forecourt.edge.wiring.start_edge` from its dealer
   certificate, its log registered in the cloud's log of logs, operators bootstrapped (a dealer
   admin, a technician, a senior technician who can review), the customers' consent recorded;
4. the console (:func:`forecourt.edge.app.create_app`) on ``http://127.0.0.1:8080``.

State lives under ``data_dir`` and is reused by the next start unless ``fresh``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from forecourt.core import Market
from forecourt.demo.cloud import LocalCloud, open_cloud, open_pki
from forecourt.demo.data import DemoWorld, generate_world
from forecourt.demo.fleet import FleetCar, NotEnoughCars, activatable, bought_features, start_fleet
from forecourt.demo.operators import seed_demo_operator
from forecourt.demo.servers import console_server
from forecourt.demo.state import DeploymentSecrets, DeploymentState
from forecourt.edge.app import ConsoleSettings, create_app, feature_notices
from forecourt.edge.app.assembly import console_services, fetch_versioned_dealer_profile
from forecourt.edge.app.client import (
    DEMO_OPERATORS_FILE,
    LocalEndpoint,
    OperatorLogin,
    demo_operators,
    write_private_json,
)
from forecourt.edge.app.consent import ANSWERABLE, ConsentAnswers, ConsentDesk
from forecourt.edge.app.directory import DoipVehicleDirectory
from forecourt.edge.operators import Operator, PasswordHashing, Role
from forecourt.edge.wiring import Edge, EdgeSettings, build_edge, ledger_verifier
from forecourt.edge.workflow import ConsentCapture
from forecourt.http.serving import BackgroundServer
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOperator
from forecourt.vehicle.factory import RepositoryRoots
from forecourt.vehicle.runtime import SimulatorHost

_log = get_logger("demo.deployment")
DEFAULT_DEALER = "DE-MUC-01"
NOTICE_ID = "privacy-notice"
ROOT_LIFETIME = timedelta(days=365)


@dataclass(frozen=True)
class DeploymentOptions:
    data_dir: Path = Path(".forecourt-demo")
    cars: int = 6
    fresh: bool = False
    dealer_id: str = DEFAULT_DEALER
    seed: int = 7
    cloud_host: str = "127.0.0.1"
    cloud_port: int = 8443
    edge_host: str = "127.0.0.1"
    edge_port: int = 8080
    address_base: int = 77
    max_parallel: int = 8
    sync_interval: float = 1.0


@dataclass
class LocalDeployment:
    """Everything running; :meth:`close` stops it in reverse order."""

    options: DeploymentOptions
    world: DemoWorld
    cloud: LocalCloud
    host: SimulatorHost
    fleet: list[FleetCar]
    edge: Edge
    console: BackgroundServer
    operators: dict[str, OperatorLogin]
    timings: dict[str, float] = field(default_factory=dict)
    reused: bool = False

    @property
    def console_url(self) -> str:
        return self.console.url

    @property
    def edge_dir(self) -> Path:
        return self.options.data_dir / "edge"

    def car(self, vin: str) -> FleetCar:
        return next(c for c in self.fleet if c.vin == vin)

    def operator(self, username: str) -> Operator:
        """A demo operator as the services know it (for in-process calls: the bench, tests)."""
        return self.edge.operators.get(_operator_id(self.edge, username=username))

    def consent(self, vin: str) -> ConsentCapture | None:
        """What the customer of ``vin`` answered on the tablet, as an activation carries it."""
        profile = self.world.profile(self.car(vin).vehicle.market)
        desk = ConsentDesk(self.edge.sessions, profile, self.edge.settings.dealer_id, NOTICE_ID)
        return desk.capture_for_activation(vin, self.edge.settings.clock())

    def start_activation(self, vin: str, username: str = "tech") -> str:
        """Start activating ``vin`` with what its customer bought, in-process; the workflow id."""
        car = self.car(vin)
        return self.edge.activations.start(
            self.operator(username),
            vin=vin,
            address=car.address,
            features=car.features,
            consent=self.consent(vin),
        )

    def close(self) -> None:
        """Console, edge (waits for running activations), cars, cloud: the reverse of start."""
        for step in (self.console.stop, self.edge.close, self.host.close, self.cloud.close):
            try:
                step()
            except Exception:  # one part failing to stop must not keep the others running
                _log.exception("deployment_stop_failed", part=getattr(step, "__qualname__", ""))

    def __enter__(self) -> LocalDeployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _world_for(options: DeploymentOptions, now: datetime) -> tuple[DemoWorld, list[str]]:
    """The smallest deterministic world with ``options.cars`` activatable cars at the dealer."""
    size = max(24, options.cars * 12)
    for _ in range(8):
        world = generate_world(seed=options.seed, vehicles=size, reference_time=now)
        cars = activatable(world, options.dealer_id, now)
        if len(cars) >= options.cars:
            return world, [c.vin.value for c in cars[: options.cars]]
        size *= 2
    raise NotEnoughCars(f"no demo world of {size} vehicles has {options.cars} cars to activate")


def _prepare(options: DeploymentOptions) -> tuple[DeploymentState, bool]:
    data_dir = options.data_dir
    if options.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    state = DeploymentState.load(data_dir)
    if (
        state is not None
        and state.dealer_id == options.dealer_id
        and len(state.vins) == options.cars
    ):
        return state, True
    if state is not None:  # a different shape was asked for: start over rather than mix
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    world, vins = _world_for(options, now)
    state = DeploymentState(
        options.seed, now, len(world.vehicles), options.dealer_id, tuple(vins), now + ROOT_LIFETIME
    )
    return state, False


def _record_consent(edge: Edge, world: DemoWorld, fleet: list[FleetCar], admin_id: str) -> None:
    """Each customer agreed on the tablet to every category their market lets them choose."""
    market = fleet[0].vehicle.market if fleet else Market.EU
    profile = world.profile(market)
    desk = ConsentDesk(edge.sessions, profile, edge.settings.dealer_id, NOTICE_ID)
    answers = {r.category: True for r in profile.rules if r.mode in ANSWERABLE}
    cross = True if profile.cross_border_mode in ANSWERABLE else None
    for number, car in enumerate(fleet, start=1):
        if desk.current(car.vin):
            continue
        desk.record(
            ConsentAnswers(
                vin=car.vin,
                subject_ref=f"crm:demo-customer-{number:03d}",
                notice_version=profile.notice_version,
                language=profile.languages[0],
                answers=answers,
                cross_border=cross,
            ),
            admin_id,
            edge.settings.clock(),
        )


def _operators(edge: Edge, directory: Path) -> dict[str, OperatorLogin]:
    """The dealer admin (bootstrap), a technician and a senior technician (the reviewer)."""
    path = directory / DEMO_OPERATORS_FILE
    if path.exists():
        return demo_operators(directory)
    dealer = edge.settings.dealer_id
    logins: dict[str, OperatorLogin] = {}
    passwords = PasswordHashing()
    for username, name, role in (
        ("admin", "Dealer administrator", Role.DEALER_ADMIN),
        ("tech", "Tina Technician", Role.TECHNICIAN),
        ("senior", "Sam Senior", Role.SENIOR_TECHNICIAN),
    ):
        seeded = seed_demo_operator(
            edge.sessions, passwords, dealer_id=dealer, username=username, display_name=name,
            role=role, now=edge.settings.clock(),
        )  # fmt: skip
        if seeded is not None:
            logins[username] = OperatorLogin(
                username, seeded.password, seeded.totp_secret, None, role.value
            )
    write_private_json(
        path,
        {
            "note": "demo only: generated operators of the demo edge",
            "operators": [
                {
                    "username": o.username,
                    "password": o.password,
                    "totp_secret": o.totp_secret,
                    "role": o.role,
                }
                for o in logins.values()
            ],
        },
    )
    return logins


def start_deployment(options: DeploymentOptions) -> LocalDeployment:  # noqa: PLR0915 - one recipe, in order
    """Start everything; on failure, whatever started is stopped again before raising."""
    began = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = now - since
        return now

    state, reused = _prepare(options)
    data_dir = options.data_dir
    secrets = DeploymentSecrets.load_or_create(data_dir)
    world = generate_world(
        seed=state.seed, vehicles=state.world_vehicles, reference_time=state.reference_time
    )
    now = datetime.now(UTC)
    t = lap("world", began)
    pki = open_pki(data_dir / "pki", secrets)
    cloud = open_cloud(
        data_dir / "cloud", pki, world, secrets,
        root_expires=state.root_expires, now=state.reference_time, fresh=not reused,
    )  # fmt: skip
    state.save(data_dir)  # the registry is seeded: the next start reuses it
    host: SimulatorHost | None = None
    edge: Edge | None = None
    console: BackgroundServer | None = None
    try:
        cloud.serve(data_dir / "cloud" / "tls", options.cloud_host, options.cloud_port)
        t = lap("cloud", t)
        by_vin = {v.vin.value: v for v in world.vehicles}
        vehicles = [by_vin[v] for v in state.vins]
        host = SimulatorHost()
        director, image = cloud.repository_roots()
        fleet = start_fleet(
            host,
            data_dir / "cars",
            vehicles,
            {v.vin.value: bought_features(world, v, now) for v in vehicles},
            pki=pki,
            roots=RepositoryRoots(director, image),
            seed=state.seed,
            oem_secret=secrets.oem_secret,
            address_base=options.address_base,
        )
        t = lap("cars", t)
        edge_dir = data_dir / "edge"
        edge_id = f"edge-{options.dealer_id.lower()}"
        issued = cloud.enrol_dealer_edge(options.dealer_id, edge_id)
        tls = issued.write_pem_bundle(edge_dir / "tls", name="edge")
        settings = EdgeSettings(
            data_dir=edge_dir,
            dealer_id=options.dealer_id,
            edge_id=edge_id,
            cloud_url=cloud.url,
            tls_cert=tls.cert,
            tls_key=tls.key,
            tls_ca=tls.ca,
            car_addresses=tuple(c.address for c in fleet),
            cloud_ledger_vkey=cloud.ledger_vkey,
            sync_interval=options.sync_interval,
            checkpoint_interval=30.0,
            max_parallel=options.max_parallel,
        )
        edge = build_edge(settings)
        cloud.register_edge_log(ledger_verifier(settings))
        operators = _operators(edge, edge_dir)
        edge.start()
        t = lap("edge", t)
        market = vehicles[0].market if vehicles else Market.EU
        # As `edge serve` does: the profile of the dealer's location, with the cloud's version.
        profile_version, profile = fetch_versioned_dealer_profile(settings)
        _record_consent(edge, world, fleet, _operator_id(edge, role=Role.DEALER_ADMIN))
        directory = DoipVehicleDirectory(
            settings.car_addresses, models={c.vin: c.model for c in fleet}
        )
        services = console_services(
            edge,
            profile,
            directory,
            features=feature_notices(world.catalog, market),
            profile_version=profile_version,
        )
        app = create_app(services, ConsoleSettings(secure_cookies=False))
        console = console_server(app, options.edge_host, options.edge_port).start()
        LocalEndpoint(console.url, options.dealer_id, edge_id).write(edge_dir)
        lap("console", t)
        timings["total"] = time.perf_counter() - began
        _log.info("deployment_ready", seconds=round(timings["total"], 2), cars=len(fleet))
        return LocalDeployment(
            options, world, cloud, host, fleet, edge, console, operators, timings, reused
        )
    except BaseException:
        for part in (console, edge):
            if part is not None:
                (part.stop if isinstance(part, BackgroundServer) else part.close)()
        if host is not None:
            host.close()
        cloud.close()
        raise


def _operator_id(edge: Edge, *, username: str | None = None, role: Role | None = None) -> str:
    """The id of this dealer's operator named ``username`` (or the one holding ``role``)."""
    query = select(EdgeOperator.id).where(EdgeOperator.dealer_id == edge.settings.dealer_id)
    if username is not None:
        query = query.where(EdgeOperator.username == username)
    if role is not None:
        query = query.where(EdgeOperator.role == role.value)
    with edge.sessions() as s:
        return str(s.execute(query.limit(1)).scalar_one())


__all__ = [
    "DeploymentOptions",
    "LocalDeployment",
    "start_deployment",
]
