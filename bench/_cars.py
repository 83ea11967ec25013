"""What the transfer benches share: simulated cars in a child process, the raw-TCP baseline,
cars driven at once from threads, and the figures printed against the 100BASE-T1 line rate.

``bench_vehicle`` (stock udsoncan over the link transport) and ``bench_link`` (the edge's
``DoipVehicleLink``) measure the same thing through two client stacks; the cars, the baseline and
the report are one piece so the two figures stay comparable.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from forecourt.logging import configure_logging
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import EntityConfig
from forecourt.vehicle.provision import CarSpec, EcuSpec, provision
from forecourt.vehicle.runtime import SimulatorHost

LINE_RATE = 12.5e6  # 100BASE-T1, bytes/s
OEM_SECRET = b"bench oem secret"
MB = 1e6
GATEWAY = 0x1000


def car_spec(index: int, vin_prefix: str) -> CarSpec:
    """Car ``index``: a 17-character VIN starting ``vin_prefix`` and one central gateway."""
    vin = f"{vin_prefix}{index:0{17 - len(vin_prefix)}d}"
    return CarSpec(vin, (), (EcuSpec(GATEWAY, "cgw", f"CGW{index:010d}", "CGW-3-110", "1.0.0"),))


def _serve_cars(
    directory: str,
    addresses: list[str],
    vin_prefix: str,
    services: Callable[[], CarServices],
    ready: Connection,
) -> None:
    """Child process: the cars, as on a real bench (the tester is another machine/process)."""
    configure_logging("WARNING")
    host = SimulatorHost()
    for i, address in enumerate(addresses):
        store = provision(Path(directory) / str(i), car_spec(i, vin_prefix), oem_secret=OEM_SECRET)
        host.start_car(Car(store, services()), EntityConfig(address, announce_to=None))
    ready.send("ready")
    ready.recv()  # until the parent says stop
    host.close()


@contextmanager
def simulated_cars(
    addresses: list[str], vin_prefix: str, services: Callable[[], CarServices] = CarServices
) -> Iterator[None]:
    """Cars ``car_spec(i, vin_prefix)`` listening on ``addresses`` in a spawned child process.

    ``services`` must be a module-level callable (it is pickled into the child).
    """
    with tempfile.TemporaryDirectory() as tmp:
        parent, child = multiprocessing.Pipe()
        simulator = multiprocessing.get_context("spawn").Process(
            target=_serve_cars, args=(tmp, addresses, vin_prefix, services, child)
        )
        simulator.start()
        parent.recv()
        try:
            yield
        finally:
            parent.send("stop")
            simulator.join(10)


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


def at_once(count: int, action: Callable[[int], float]) -> tuple[list[float], float]:
    """``action(i)`` for every ``i`` at once, a thread each; (what each returned, wall time)."""
    results = [0.0] * count

    def run(i: int) -> None:
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - start


def rate_row(label: str, rate: float, raw: float, width: int = 40) -> None:
    """Print ``rate`` in MB/s beside its ratio to the line rate and to raw TCP."""
    print(
        f"{label:<{width}} {rate / MB:9.1f} MB/s   {rate / LINE_RATE:6.2f}x line rate"
        f"   {rate / raw:6.1%} of raw TCP"
    )
