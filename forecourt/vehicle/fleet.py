"""Fleet mode: N cars in one process and one event loop, each on its own loopback address.

Linux routes all of 127.0.0.0/8 to ``lo``, so car *i* listens on ``127.<base>.y.z:13400`` and a
tester reaches it exactly as it would reach a car on the workshop network: by address, on the
standard port. Used by load tests, the bench and the demo.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from forecourt.vehicle.car import Car
from forecourt.vehicle.doip.entity import DoipEntity, EntityConfig

FLEET_FIRST_HOST = 10  # skip 127.x.0.1-9


def fleet_addresses(count: int, base_octet: int = 77) -> Iterator[str]:
    """Addresses 127.<base>.y.z for ``count`` cars, never the network or broadcast address."""
    if not 0 < base_octet < 255:
        raise ValueError("base_octet must be 1..254")
    hosts = ipaddress.IPv4Network(f"127.{base_octet}.0.0/16").hosts()
    for _ in range(FLEET_FIRST_HOST - 1):
        next(hosts)
    for _ in range(count):
        yield str(next(hosts))


@dataclass(frozen=True)
class FleetMember:
    vin: str
    address: str
    entity: DoipEntity


async def start_fleet(
    cars: Sequence[Car],
    addresses: Sequence[str],
    *,
    announce: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[FleetMember]:
    """Start one DoIP entity per car on the running loop; ``progress(started, total)``."""
    members = []
    for index, (car, address) in enumerate(zip(cars, addresses, strict=True), start=1):
        entity = DoipEntity(car, EntityConfig(address))
        await entity.start()
        members.append(FleetMember(car.vin, address, entity))
        if progress is not None:
            progress(index, len(cars))
    if announce:
        await asyncio.gather(*(m.entity.announce() for m in members))
    return members
