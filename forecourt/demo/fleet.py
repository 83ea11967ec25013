"""The demo's cars: which vehicles of the world make the fleet, factory provisioning, DoIP hosting.

A fleet car is one the dealer can activate today: at the dealer, assigned to it, with at least
one bought (purchase or trial) feature that the planner accepts under full consent. The cars are
provisioned by the factory function with the OEM PKI (ECU identity certificates) and the
cloud's repository roots, their ECU keys those the registry knows (derived from the seed, demo
only), and run as DoIP entities on ``127.<base>.y.z:13400`` by one :class:`SimulatorHost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from forecourt.core import (
    ActivationPlan,
    ConsentChoice,
    ConsentRecord,
    DataCategory,
    LifecycleState,
    Vehicle,
    plan_activation,
)
from forecourt.demo.data import DemoWorld, ecu_private_keys
from forecourt.trust.oem_pki import OemPki
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import DoipEntity, EntityConfig
from forecourt.vehicle.factory import RepositoryRoots, provision_cars
from forecourt.vehicle.fleet import fleet_addresses
from forecourt.vehicle.provision import spec_from_vehicle
from forecourt.vehicle.runtime import SimulatorHost
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import trust_services

MODEL_NAMES = {"VOLTA": "Volta", "TERRA": "Terra", "AURA": "Aura", "HAULER": "Hauler"}


class NotEnoughCars(ValueError):
    """The demo world has fewer activatable cars at the dealer than asked for."""


def bought_features(world: DemoWorld, vehicle: Vehicle, now: datetime) -> tuple[str, ...]:
    """Features the customer paid for or is trialling (standard ones need no activation)."""
    return tuple(
        sorted(
            {
                e.feature_code
                for e in world.entitlements
                if e.vin == vehicle.vin and e.is_active_at(now) and e.source.value != "standard"
            }
        )
    )


def full_consent(notice_version: str, now: datetime) -> ConsentRecord:
    return ConsentRecord(
        notice_version, now, tuple(ConsentChoice(c, True) for c in DataCategory), cross_border=True
    )


def activatable(world: DemoWorld, dealer_id: str, now: datetime) -> list[Vehicle]:
    """Cars at ``dealer_id`` whose bought features plan without refusal, in world order."""
    found = []
    for car in world.vehicles:
        if car.state is not LifecycleState.AT_DEALER or car.dealer_id != dealer_id:
            continue
        wanted = bought_features(world, car, now)
        if not wanted:
            continue
        profile = world.profile(car.market)
        plan = plan_activation(
            car,
            catalog=world.catalog,
            entitlements=world.entitlements,
            profile=profile,
            requested=wanted,
            consent=full_consent(profile.notice_version, now),
            now=now,
        )
        if isinstance(plan, ActivationPlan):
            found.append(car)
    return found


@dataclass
class FleetCar:
    vehicle: Vehicle
    address: str
    features: tuple[str, ...]
    car: Car
    entity: DoipEntity

    @property
    def vin(self) -> str:
        return self.vehicle.vin.value

    @property
    def model(self) -> str:
        return MODEL_NAMES.get(self.vehicle.model, self.vehicle.model.title())

    @property
    def state(self) -> str:
        """What the car itself says: activated once it applied a bundle, else asleep."""
        return "activated" if self.car.state.activation_counter else "asleep"


def start_fleet(
    host: SimulatorHost,
    cars_dir: Path,
    vehicles: list[Vehicle],
    features: dict[str, tuple[str, ...]],
    *,
    pki: OemPki,
    roots: RepositoryRoots,
    seed: int,
    oem_secret: bytes,
    address_base: int,
) -> list[FleetCar]:
    """Provision (cars already provisioned are kept as they are) and start every car."""
    provision_cars(
        cars_dir,
        [spec_from_vehicle(v) for v in vehicles],
        oem_secret=oem_secret,
        pki=pki,
        roots=roots,
        ecu_keys={
            v.vin.value: {
                e.logical_address: ecu_private_keys(seed, v.vin.value, e.role) for e in v.ecus
            }
            for v in vehicles
        },
    )
    fleet = []
    for vehicle, address in zip(
        vehicles, fleet_addresses(len(vehicles), address_base), strict=True
    ):
        trust = trust_services()
        services = CarServices(verifier=trust.verifier, authenticator=trust.authenticator)
        car = Car(CarStore(cars_dir / vehicle.vin.value), services)
        entity = host.start_car(car, EntityConfig(address, announce_to=None))
        fleet.append(FleetCar(vehicle, address, features[vehicle.vin.value], car, entity))
    return fleet
