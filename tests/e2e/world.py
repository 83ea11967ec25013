"""The whole path on real sockets: a cloud on uvicorn (mTLS), simulated cars, the real edge.

* :class:`CloudStack`: the seeded cloud of ``tests.cloud.world`` served over mutual TLS, with a
  known ledger key (so the edge can verify its anchoring receipts) and the package bytes of the
  demo catalog in its blob store.
* :func:`CloudStack.start_car`: a car of the registry provisioned by the factory function with
  the OEM PKI (ECU certificates) and the cloud's exported repository roots, its ECU keys those
  the registry knows, run as a DoIP entity on a random 127.x.y.z address.
* :func:`CloudStack.edge_settings`: the dealer's edge settings (certificate, key and OEM root as
  files); :func:`forecourt.edge.wiring.start_edge` builds the real edge from them.
"""

from __future__ import annotations

import dataclasses
import random
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.cloud.app import create_app
from forecourt.cloud.server import serve_in_thread
from forecourt.core import ActivationPlan, LifecycleState, PlanRefusal, Vehicle, plan_activation
from forecourt.demo.data import ecu_private_keys, package_content
from forecourt.edge.operators import Role
from forecourt.edge.wiring import Edge, EdgeSettings, ledger_verifier
from forecourt.edge.workflow import ConsentCapture
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import DoipEntity, EntityConfig
from forecourt.vehicle.factory import RepositoryRoots, provision_cars
from forecourt.vehicle.faults import FaultPlan
from forecourt.vehicle.provision import spec_from_vehicle
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import trust_services
from tests.cloud.world import NOW, CloudWorld, build_world, full_consent
from tests.edge.operators.conftest import Person, Staff

OEM_SECRET = b"e2e oem secret, never a real one"
SEED = 7


def random_loopback() -> str:
    rng = random.SystemRandom()
    return f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


class WallClock:
    """Real time plus an offset the test moves forward (a fresh TOTP step without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class RunningCar:
    vehicle: Vehicle
    car: Car
    entity: DoipEntity
    address: str
    store: CarStore

    @property
    def vin(self) -> str:
        return self.vehicle.vin.value


@dataclass
class CloudStack:
    world: CloudWorld
    url: str
    directory: Path
    host: SimulatorHost
    ledger_signer: SoftwareNoteSigner
    cars: list[RunningCar] = field(default_factory=list)

    @property
    def ledger_vkey(self) -> str:
        return verifier_for(self.world.config.ledger_origin, self.ledger_signer).to_vkey()

    # -- cars ----------------------------------------------------------------------------------

    def car_for(self, vehicle: Vehicle) -> RunningCar:
        """The running simulated car of ``vehicle``, started on first use."""
        for running in self.cars:
            if running.vehicle.vin == vehicle.vin:
                return running
        return self.start_car(vehicle)

    def start_car(self, vehicle: Vehicle, faults: FaultPlan | None = None) -> RunningCar:
        cars_dir = self.directory / "cars"
        keys = {
            e.logical_address: ecu_private_keys(SEED, vehicle.vin.value, e.role)
            for e in vehicle.ecus
        }
        roots = self.world.context.signer.root_bytes()
        provision_cars(
            cars_dir,
            [spec_from_vehicle(vehicle)],
            oem_secret=OEM_SECRET,
            pki=self.world.pki,
            roots=RepositoryRoots(roots["director"], roots["image"]),
            ecu_keys={vehicle.vin.value: keys},
            now=NOW,
        )
        store = CarStore(cars_dir / vehicle.vin.value)
        trust = trust_services()
        services = CarServices(
            verifier=trust.verifier,
            authenticator=trust.authenticator,
            faults=faults or FaultPlan(),
        )
        car = Car(store, services)
        address = random_loopback()
        entity = self.host.start_car(car, EntityConfig(address, announce_to=None))
        running = RunningCar(vehicle, car, entity, address, store)
        self.cars.append(running)
        return running

    def restart_car(self, running: RunningCar) -> RunningCar:
        """Power-cycle: the car is rebuilt from its store, at the same address."""
        self.host.stop_car(running.entity)
        car = Car(running.store, running.car.services)
        entity = self.host.start_car(car, EntityConfig(running.address, announce_to=None))
        running.car, running.entity = car, entity
        return running

    # -- the registry, read --------------------------------------------------------------------

    def cars_where(self, wanted: Callable[[Vehicle], bool]) -> list[Vehicle]:
        return [v for v in self.world.demo.vehicles if wanted(v)]

    def bought(self, vehicle: Vehicle) -> tuple[str, ...]:
        return tuple(
            sorted(
                e.feature_code
                for e in self.world.demo.entitlements
                if e.vin == vehicle.vin and e.is_active_at(NOW) and e.source.value != "standard"
            )
        )

    def plans(self, vehicle: Vehicle, features: tuple[str, ...]) -> bool:
        profile = self.world.demo.profile(vehicle.market)
        result = plan_activation(
            vehicle,
            catalog=self.world.demo.catalog,
            entitlements=self.world.demo.entitlements,
            profile=profile,
            requested=features,
            consent=full_consent(profile.notice_version),
            now=NOW,
        )
        return isinstance(result, ActivationPlan)

    def activatable(self, *, ecus: int | None = None, exclude: set[str] | None = None) -> Vehicle:
        for car in self.world.demo.vehicles:
            if car.state is not LifecycleState.AT_DEALER or car.dealer_id is None:
                continue
            if (ecus is not None and len(car.ecus) != ecus) or car.vin.value in (exclude or ()):
                continue
            bought = self.bought(car)
            if bought and self.plans(car, bought):
                return car
        raise AssertionError("no activatable car of that kind in the demo world")

    def refused_with(
        self, code: str, *, consent: bool, ecus: int | None = None
    ) -> tuple[Vehicle, tuple[str, ...], list[str]]:
        """A car at its dealer, one feature the planner refuses for ``code``, and every code
        the planner gives (a feature needing missing hardware is also not entitled)."""
        catalog = self.world.demo.catalog
        for car in self.world.demo.vehicles:
            if car.state is not LifecycleState.AT_DEALER or car.dealer_id is None:
                continue
            if ecus is not None and len(car.ecus) != ecus:
                continue
            profile = self.world.demo.profile(car.market)
            for feature in catalog.features:
                result = plan_activation(
                    car,
                    catalog=catalog,
                    entitlements=self.world.demo.entitlements,
                    profile=profile,
                    requested=(feature.code,),
                    consent=full_consent(profile.notice_version) if consent else None,
                    now=NOW,
                )
                if isinstance(result, PlanRefusal) and code in {c.value for c in result.codes}:
                    return car, (feature.code,), sorted(c.value for c in result.codes)
        raise AssertionError(f"no car and feature refused for {code}")

    def consent(self, vehicle: Vehicle) -> ConsentCapture:
        profile = self.world.demo.profile(vehicle.market)
        return ConsentCapture(
            record=full_consent(profile.notice_version),
            notice_id="privacy-notice",
            region=vehicle.market.value.lower(),
            subject_ref="crm:customer-e2e",
        )

    # -- the edge ------------------------------------------------------------------------------

    def edge_settings(self, dealer_id: str, data_dir: Path, **changes: Any) -> EdgeSettings:
        issued = self.world.dealer_certs[dealer_id]
        paths = issued.write_pem_bundle(data_dir / "tls", name="edge")
        settings = EdgeSettings(
            data_dir=data_dir,
            dealer_id=dealer_id,
            edge_id=f"edge-{dealer_id.lower()}",
            cloud_url=self.url,
            tls_cert=paths.cert,
            tls_key=paths.key,
            tls_ca=paths.ca,
            car_addresses=tuple(c.address for c in self.cars),
            cloud_ledger_vkey=self.ledger_vkey,
            sync_interval=0.2,
            checkpoint_interval=3600.0,
            clock=WallClock(),
        )
        return dataclasses.replace(settings, **changes)

    def register_edge_log(self, settings: EdgeSettings) -> None:
        """The OEM onboards the edge: its log's key is registered through the staff route."""
        vkey = ledger_verifier(settings).to_vkey()  # what Edge.ledger_vkey() gives once built
        with self.staff() as staff:
            answer = staff.put(
                f"/v1/dealers/{settings.dealer_id}/edges/{settings.edge_id}/ledger-key",
                json={"vkey": vkey},
            )
        assert answer.status_code == 200, answer.text

    def staff(self) -> httpx.Client:
        """An OEM staff client (bearer token, no client certificate)."""
        root = self.world.pki.root.public_bytes(Encoding.PEM).decode()
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cadata=root),
            headers={"authorization": f"Bearer {self.world.staff_token}"},
        )


@dataclass
class People:
    technician: Person
    senior: Person
    manager: Person


def hire(edge: Edge) -> People:
    clock = edge.settings.clock
    assert isinstance(clock, WallClock)
    staff = Staff(edge.operators, clock)  # type: ignore[arg-type]
    return People(
        staff.hire(Role.TECHNICIAN, edge.settings.dealer_id),
        staff.hire(Role.SENIOR_TECHNICIAN, edge.settings.dealer_id),
        staff.hire(Role.SERVICE_MANAGER, edge.settings.dealer_id),
    )


def upload_packages(world: CloudWorld) -> None:
    for package in world.demo.catalog.packages:
        data = package_content(package.name, str(package.version), package.size)
        world.context.blobs.put([data], expected_sha256=package.sha256, expected_size=len(data))


@contextmanager
def cloud_stack(db_url: str, directory: Path) -> Iterator[CloudStack]:
    world = build_world(db_url, blob_dir=directory / "blobs", vehicles=30)
    upload_packages(world)
    signer = SoftwareNoteSigner.generate()
    config = dataclasses.replace(world.config, ledger_signer=signer)
    files = world.tls_files(directory / "server")
    host = SimulatorHost()
    try:
        app = create_app(config, world.context)
        with serve_in_thread(app, files, staff_without_certificate=True) as url:
            yield CloudStack(world, url, directory, host, signer)
    finally:
        host.close()
        world.context.db.dispose()
