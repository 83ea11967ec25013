"""Edge activation latency and throughput on one machine, over the real path.

Run: .venv/bin/python bench/bench_edge.py [--quick]

Everything is the product's local deployment (``forecourt.demo.deployment``): the cloud over
mutual TLS on uvicorn, the real edge (``start_edge``), simulated cars as DoIP entities on
loopback, each activation the full workflow (DoIP connect, UDS identification, cloud
authorisation, package fetch through the edge cache, TransferData, apply routine, signed
manifest verified) with the features the customer bought ("feature-only": no OS image beyond
what those features need).

1. Latency: one car at a time, each a fresh car (a second activation of a car needs a review),
   ``--latency-cars`` of them; p50 / p99 and the time split by step. The first car also fills
   the edge's package cache; the split shows where the time goes. Goal: p50 < 1 s.
2. Throughput: ``--cars`` cars started at once (200; 20 with ``--quick``), the edge running at
   most ``--parallel`` workflows at a time; cars/s and the per-step split.

Baseline measured in the same run: one mutual-TLS round trip edge → cloud (the floor under an
authorisation) and the sequential rate of part 1 (what concurrency buys in part 2).

Each step's time is recorded by the workflow for the state it enters: ``connect`` → connected,
``identify`` → identified, ``authorise`` → authorised (the cloud signs the bundle), ``fetch`` →
transferring (packages from the cache or the cloud), ``transfer`` → applying (bytes to the car),
``apply`` → verified (apply routine and the signed manifest), ``record`` → done.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from forecourt.demo.deployment import DeploymentOptions, LocalDeployment, start_deployment
from forecourt.demo.run import quiet_libraries
from forecourt.edge.app.assembly import edge_tls
from forecourt.edge.workflow import WorkflowState
from forecourt.logging import configure_logging

STEPS = (
    ("connect", "connected"),
    ("identify", "identified"),
    ("authorise", "authorised"),
    ("fetch", "transferring"),
    ("transfer", "applying"),
    ("apply", "verified"),
    ("record", "done"),
)
GOAL_P50_S = 1.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def split(deployment: LocalDeployment, workflow_ids: list[str]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {name: [] for name, _ in STEPS}
    for workflow_id in workflow_ids:
        timings = deployment.edge.activations.progress(workflow_id).timings_ms
        for name, state in STEPS:
            found[name].append(float(timings.get(state, 0)))
    return found


def print_split(title: str, found: dict[str, list[float]]) -> None:
    total = sum(statistics.fmean(v) for v in found.values() if v) or 1.0
    print(f"  {title}: mean ms per step (share)")
    for name, values in found.items():
        if values:
            mean = statistics.fmean(values)
            print(f"    {name:<9} {mean:8.1f} ms  p99 {percentile(values, 99):8.1f}  "
                  f"{100 * mean / total:5.1f} %")  # fmt: skip


def cloud_round_trip(deployment: LocalDeployment, n: int = 20) -> float:
    """Median seconds of one mutual-TLS GET to a dealer route on a kept-alive connection."""
    settings = deployment.edge.settings
    url = f"{settings.cloud_url}/v1/dealer/compliance-profile"
    with httpx.Client(verify=edge_tls(settings).context()) as client:
        client.get(url)
        times = []
        for _ in range(n):
            began = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def run_one_at_a_time(deployment: LocalDeployment) -> list[float]:
    seconds, ids = [], []
    for car in deployment.fleet:
        began = time.perf_counter()
        workflow_id = deployment.start_activation(car.vin)
        record = deployment.edge.activations.wait(workflow_id, timeout=120)
        seconds.append(time.perf_counter() - began)
        if record.state is not WorkflowState.DONE:
            raise SystemExit(f"{car.vin}: {record.state} {record.error_code} {record.error_detail}")
        ids.append(workflow_id)
    print(f"latency, {len(seconds)} cars one at a time (fresh car each):")
    print(f"  first (cold package cache) {seconds[0] * 1000:7.1f} ms")
    p50, p99 = percentile(seconds, 50), percentile(seconds, 99)
    verdict = "met" if p50 < GOAL_P50_S else "NOT met"
    print(f"  p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   "
          f"max {max(seconds) * 1000:7.1f} ms   goal p50 < {GOAL_P50_S * 1000:.0f} ms: "
          f"{verdict} ({p50 / GOAL_P50_S:.2f} of the goal)")  # fmt: skip
    print_split("split", split(deployment, ids))
    return seconds


def run_all_at_once(deployment: LocalDeployment, parallel: int) -> float:
    began = time.perf_counter()
    ids = [deployment.start_activation(car.vin) for car in deployment.fleet]
    states = [deployment.edge.activations.wait(i, timeout=600).state for i in ids]
    elapsed = time.perf_counter() - began
    done = sum(1 for s in states if s is WorkflowState.DONE)
    rate = done / elapsed
    print(f"throughput, {len(ids)} cars at once (edge runs {parallel} at a time):")
    print(f"  {done}/{len(ids)} activated in {elapsed:.2f} s: {rate:.1f} cars/s, "
          f"{elapsed / max(done, 1) * 1000:.1f} ms per car")  # fmt: skip
    print_split("split under load", split(deployment, ids))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 cars at once, 8 one at a time")
    parser.add_argument("--cars", type=int, default=None, help="cars at once (default 200)")
    parser.add_argument("--latency-cars", type=int, default=None, help="default 30")
    parser.add_argument("--parallel", type=int, default=16, help="edge workflows at a time")
    args = parser.parse_args()
    many = args.cars or (20 if args.quick else 200)
    few = args.latency_cars or (8 if args.quick else 30)
    configure_logging("WARNING", False)
    quiet_libraries()
    logging.getLogger().setLevel(logging.WARNING)
    base = random.SystemRandom().randrange(100, 200)
    with tempfile.TemporaryDirectory(prefix="forecourt-bench-edge-") as tmp:
        options = DeploymentOptions(
            data_dir=Path(tmp) / "latency", cars=few, cloud_port=0, edge_port=0,
            address_base=base, max_parallel=args.parallel,
        )  # fmt: skip
        began = time.perf_counter()
        with start_deployment(options) as deployment:
            print(f"deployment of {few} cars ready in {time.perf_counter() - began:.2f} s")
            rtt = cloud_round_trip(deployment)
            print(f"baseline: one mutual-TLS round trip to the cloud {rtt * 1000:.2f} ms")
            seconds = run_one_at_a_time(deployment)
        sequential_rate = 1 / statistics.fmean(seconds[1:] or seconds)
        options = DeploymentOptions(
            data_dir=Path(tmp) / "throughput", cars=many, cloud_port=0, edge_port=0,
            address_base=base + 1, max_parallel=args.parallel,
        )  # fmt: skip
        began = time.perf_counter()
        with start_deployment(options) as deployment:
            print(f"deployment of {many} cars ready in {time.perf_counter() - began:.2f} s")
            rate = run_all_at_once(deployment, args.parallel)
        print(f"ratio: {rate:.1f} cars/s at once vs {sequential_rate:.1f} cars/s one at a time "
              f"= {rate / sequential_rate:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
