"""TransferData throughput into simulated cars, beside raw loopback TCP and the 100BASE-T1 line.

Run: .venv/bin/python bench/bench_vehicle.py [--quick]

Drives the cars with stock udsoncan over doipclient through the edge's link transport
(forecourt.edge.link.transport: FastDoIPClient without the per-send hex dump, EcuChannel without
udsoncan's eager hexlify), 0x27 security access, 0x38 AddFile and 1 MiB TransferData blocks, then
0x37 whose response carries the SHA-256 of what the ECU stored (checked). Prints MB/s for one car,
per car and aggregate for ten cars at once, raw loopback TCP measured in the same run, and the
ratio of each to the 100BASE-T1 line rate (12.5 MB/s). Target: >= 90 % of line rate per car.
The cars run in a child process (as they would on another machine); the ten testers are threads
of this process, so the ten-car figure also measures the client libraries under one GIL.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import udsoncan
from udsoncan.client import Client
from udsoncan.services import DiagnosticSessionControl, RequestFileTransfer

from bench._cars import LINE_RATE, OEM_SECRET, at_once, car_spec, rate_row, raw_tcp, simulated_cars
from forecourt.edge.link.transport import EcuChannel, FastDoIPClient
from forecourt.logging import configure_logging
from forecourt.vehicle.fleet import fleet_addresses
from forecourt.vehicle.uds.security_access import compute_key, derive_ecu_secret

VIN_PREFIX = "BENCH"


def gateway_serial(index: int) -> str:
    """The gateway's serial number, from which its 0x27 secret is derived."""
    return car_spec(index, VIN_PREFIX).ecus[0].serial_number


def upload(address: str, serial: str, payload: bytes) -> float:
    """Upload ``payload`` to the gateway; return seconds spent in 0x38..0x37."""
    config = dict(udsoncan.configs.default_client_config)
    secret = derive_ecu_secret(OEM_SECRET, serial)
    config.update(
        use_server_timing=False,
        p2_timeout=5.0,
        request_timeout=30.0,
        security_algo=lambda level, seed, params=None: compute_key(secret, level, seed),
    )
    doip = FastDoIPClient(address, 0x1000)
    with Client(EcuChannel(doip, 0x1000), config=config) as client:
        client.change_session(DiagnosticSessionControl.Session.programmingSession)
        client.unlock_security_access(1)
        start = time.perf_counter()
        response = client.request_file_transfer(
            RequestFileTransfer.ModeOfOperation.ReplaceFile, "bench.bin", filesize=len(payload)
        )
        block = response.service_data.max_length - 2
        view = memoryview(payload)
        for counter, offset in enumerate(range(0, len(payload), block), start=1):
            client.transfer_data(counter & 0xFF, bytes(view[offset : offset + block]))
        digest = client.request_transfer_exit().service_data.parameter_records
        elapsed = time.perf_counter() - start
    doip.close()
    if digest != hashlib.sha256(payload).digest():
        raise SystemExit("ECU stored something else than was sent")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run")
    args = parser.parse_args()
    configure_logging("WARNING")
    one_size = (16 if args.quick else 64) * (1 << 20)
    fleet_size = (4 if args.quick else 16) * (1 << 20)
    cars = 10
    base = random.SystemRandom().randrange(100, 250)
    addresses = list(fleet_addresses(cars, base))
    payload = os.urandom(one_size)
    with simulated_cars(addresses, VIN_PREFIX):
        upload(addresses[0], gateway_serial(0), payload[: 1 << 20])  # warm-up
        single = one_size / upload(addresses[0], gateway_serial(0), payload)
        fleet_payload = payload[:fleet_size]
        results, wall = at_once(
            cars, lambda i: upload(addresses[i], gateway_serial(i), fleet_payload)
        )
    per_car = min(fleet_size / r for r in results)
    aggregate = cars * fleet_size / wall
    raw = raw_tcp("127.0.0.1", one_size)

    def row(label: str, rate: float) -> None:
        rate_row(label, rate, raw, width=34)

    print(
        f"TransferData, 1 MiB blocks, {one_size >> 20} MiB to one car, {fleet_size >> 20} MiB "
        f"to each of {cars} cars at once (stock udsoncan + doipclient)"
    )
    row("raw loopback TCP (same run)", raw)
    row("100BASE-T1 line rate", LINE_RATE)
    row("one car", single)
    row(f"{cars} cars: slowest car", per_car)
    row(f"{cars} cars: aggregate", aggregate)
    verdict = "meets" if per_car >= 0.9 * LINE_RATE and single >= 0.9 * LINE_RATE else "MISSES"
    print(f"target >= 90 % of line rate per car: {verdict}")


if __name__ == "__main__":
    main()
