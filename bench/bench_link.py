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
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from doipclient import DoIPClient  # type: ignore[attr-defined]

import forecourt.edge.link.doip as doip_module
from forecourt.edge.link import DealerCredentials, DoipVehicleLink, LinkConfig
from forecourt.edge.link.transport import FastDoIPClient
from forecourt.logging import configure_logging
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import EntityConfig
from forecourt.vehicle.fleet import fleet_addresses
from forecourt.vehicle.provision import CarSpec, EcuSpec, provision
from forecourt.vehicle.runtime import SimulatorHost
from tests.vehicle.doubles import HmacAuthenticator, dealer_certificate, dealer_proof

LINE_RATE = 12.5e6  # 100BASE-T1, bytes/s
OEM_SECRET = b"bench oem secret"
MB = 1e6


def spec(index: int) -> CarSpec:
    vin = f"WFCRTBENCH{index:07d}"
    return CarSpec(vin, (), (EcuSpec(0x1000, "cgw", f"CGW{index:010d}", "CGW-3-110", "1.0.0"),))


def serve_cars(directory: str, addresses: list[str], ready: Connection) -> None:
    """Child process: the cars (0x29 checks the dealer certificate with the simulator's double)."""
    configure_logging("WARNING")
    host = SimulatorHost()
    for i, address in enumerate(addresses):
        store = provision(Path(directory) / str(i), spec(i), oem_secret=OEM_SECRET)
        services = CarServices(authenticator=HmacAuthenticator())
        host.start_car(Car(store, services), EntityConfig(address, announce_to=None))
    ready.send("ready")
    ready.recv()  # until the parent says stop
    host.close()


def transfer(index: int, address: str, payload: bytes) -> float:
    """Seconds for one ``transfer`` of ``payload`` to car ``index``'s gateway."""
    credentials = DealerCredentials(dealer_certificate(), lambda c, vin, ecu: dealer_proof(c))
    with DoipVehicleLink(LinkConfig(discovery_timeout=2.0)) as link:
        link.discover(vin=spec(index).vin, addresses=[address])
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


def raw_tcp(host: str, size: int) -> float:
    """Bytes/s of a plain TCP stream over loopback in 1 MiB writes (the ceiling for any client)."""
    server = socket.create_server((host, 0))
    port = server.getsockname()[1]

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            while conn.recv(1 << 20):
                pass

    thread = threading.Thread(target=sink)
    thread.start()
    chunk = os.urandom(1 << 20)
    start = time.perf_counter()
    with socket.create_connection((host, port)) as sock:
        for _ in range(size // len(chunk)):
            sock.sendall(chunk)
    thread.join()
    server.close()
    return size / (time.perf_counter() - start)


def fleet(addresses: list[str], payload: bytes) -> tuple[list[float], float]:
    """Transfer ``payload`` to every car at once, one link per thread; (seconds each, wall)."""
    results = [0.0] * len(addresses)

    def run(i: int) -> None:
        results[i] = transfer(i, addresses[i], payload)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(addresses))]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - start


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
    with tempfile.TemporaryDirectory() as tmp:
        parent, child = multiprocessing.Pipe()
        simulator = multiprocessing.get_context("spawn").Process(
            target=serve_cars, args=(tmp, addresses, child)
        )
        simulator.start()
        parent.recv()
        try:
            transfer(0, addresses[0], payload[: 1 << 20])  # warm-up
            single = one_size / transfer(0, addresses[0], payload)

            setattr(doip_module, "FastDoIPClient", _StockSend)  # noqa: B010
            try:
                stock = stock_size / transfer(0, addresses[0], payload[:stock_size])
            finally:
                setattr(doip_module, "FastDoIPClient", FastDoIPClient)  # noqa: B010

            results, wall = fleet(addresses, payload[:fleet_size])
        finally:
            parent.send("stop")
            simulator.join(10)
    per_car = min(fleet_size / r for r in results)
    aggregate = cars * fleet_size / wall
    raw = raw_tcp("127.0.0.1", one_size)

    def row(label: str, rate: float) -> None:
        print(
            f"{label:<40} {rate / MB:9.1f} MB/s   {rate / LINE_RATE:6.2f}x line rate"
            f"   {rate / raw:6.1%} of raw TCP"
        )

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
