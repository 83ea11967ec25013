"""Transfer throughput through the edge's vehicle link, beside raw loopback TCP and the line rate.

Run: .venv/bin/python bench/bench_link.py [--quick]

Each transfer is ``DoipVehicleLink.transfer``: 0x38 ResumeFile (refused: nothing to resume) then
ReplaceFile, TransferData in the largest block the ECU allows (1 MiB), 0x37 whose SHA-256 is
checked, after discovery by VIN and 0x29 authentication (not timed). Prints MB/s for one car, per
car and aggregate for ten cars at once (ten links in ten threads of this process), one car through
stock doipclient ``send_doip`` (with its hex dump: what the speed fix removes), raw loopback TCP
measured in the same run, and each figure's ratio to the 100BASE-T1 line rate (12.5 MB/s).
Goal: >= 90 % of line rate per car. The cars run in a child process, as on another machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from doipclient import DoIPClient  # type: ignore[attr-defined]

import forecourt.edge.link.doip as doip_module
from bench._cars import LINE_RATE, at_once, car_spec, rate_row, raw_tcp, simulated_cars
from forecourt.edge.link import DealerCredentials, DoipVehicleLink, LinkConfig
from forecourt.edge.link.transport import FastDoIPClient
from forecourt.logging import configure_logging
from forecourt.vehicle.car import CarServices
from forecourt.vehicle.fleet import fleet_addresses
from tests.vehicle.doubles import HmacAuthenticator, dealer_certificate, dealer_proof

VIN_PREFIX = "WFCRTBENCH"


def car_services() -> CarServices:
    """0x29 checks the dealer certificate with the simulator's double."""
    return CarServices(authenticator=HmacAuthenticator())


def transfer(index: int, address: str, payload: bytes) -> float:
    """Seconds for one ``transfer`` of ``payload`` to car ``index``'s gateway."""
    credentials = DealerCredentials(dealer_certificate(), lambda c, vin, ecu: dealer_proof(c))
    with DoipVehicleLink(LinkConfig(discovery_timeout=2.0)) as link:
        link.discover(vin=car_spec(index, VIN_PREFIX).vin, addresses=[address])
        link.authenticate(0x1000, credentials)
        start = time.perf_counter()
        receipt = link.transfer(0x1000, "bench.bin", payload)
        elapsed = time.perf_counter() - start
    if receipt.bytes_sent != len(payload):
        raise SystemExit("bytes were sent twice")
    return elapsed


class _StockSend(FastDoIPClient):
    """The link with doipclient's own ``send_doip`` (hex dump included), for comparison."""

    send_doip = DoIPClient.send_doip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run")
    args = parser.parse_args()
    configure_logging("WARNING")
    logging.getLogger("UdsClient").setLevel(logging.ERROR)  # the link logs refusals itself
    one_size = (16 if args.quick else 64) * (1 << 20)
    fleet_size = (4 if args.quick else 16) * (1 << 20)
    stock_size = (2 if args.quick else 8) * (1 << 20)
    cars = 10
    addresses = list(fleet_addresses(cars, random.SystemRandom().randrange(100, 250)))
    payload = os.urandom(one_size)
    with simulated_cars(addresses, VIN_PREFIX, car_services):
        transfer(0, addresses[0], payload[: 1 << 20])  # warm-up
        single = one_size / transfer(0, addresses[0], payload)

        setattr(doip_module, "FastDoIPClient", _StockSend)  # noqa: B010
        try:
            stock = stock_size / transfer(0, addresses[0], payload[:stock_size])
        finally:
            setattr(doip_module, "FastDoIPClient", FastDoIPClient)  # noqa: B010

        fleet_payload = payload[:fleet_size]
        results, wall = at_once(cars, lambda i: transfer(i, addresses[i], fleet_payload))
    per_car = min(fleet_size / r for r in results)
    aggregate = cars * fleet_size / wall
    raw = raw_tcp("127.0.0.1", one_size)

    def row(label: str, rate: float) -> None:
        rate_row(label, rate, raw)

    print(
        f"DoipVehicleLink.transfer, 1 MiB blocks: {one_size >> 20} MiB to one car, "
        f"{fleet_size >> 20} MiB to each of {cars} cars at once"
    )
    row("raw loopback TCP (same run)", raw)
    row("100BASE-T1 line rate", LINE_RATE)
    row(f"one car, stock send_doip ({stock_size >> 20} MiB)", stock)
    row("one car", single)
    row(f"{cars} cars: slowest car", per_car)
    row(f"{cars} cars: aggregate", aggregate)
    print(f"speed fix: {single / stock:.1f}x the stock send path")
    verdict = "meets" if min(single, per_car) >= 0.9 * LINE_RATE else "MISSES"
    print(f"goal >= 90 % of line rate per car: {verdict}")


if __name__ == "__main__":
    main()
