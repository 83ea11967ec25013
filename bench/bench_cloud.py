"""Cloud authorisations/s and p50/p99 latency on PostgreSQL over mutual TLS, beside the ceiling.

The ceiling is measured in the same run: raw bundle signing/s (the same plan signed in-process,
no HTTP, no database) and raw PostgreSQL single-row commits/s (one INSERT per transaction, one
connection per worker). An authorisation needs both, so the lower of the two bounds it; the
ratio printed is authorisations/s over that bound (goal: at least 50 %).

The cloud runs as in production: ``--workers`` forked uvicorn processes (default: one per core)
on one port (:mod:`forecourt.http.workers`), the clients in another process. For scale, the run
also prints the rate of the cheapest request there is on the same connections (``GET
/v1/health``, no database, no signature): what HTTP + TLS alone allow on this machine.

Usage: .venv/bin/python bench/bench_cloud.py [--quick] [--concurrency N] [--workers N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from forecourt.cloud.grants import grant_terms
from forecourt.core import ActivationPlan, LifecycleState, Vehicle, plan_activation
from forecourt.logging import configure_logging
from forecourt.trust.model import NonceFreshness
from tests.cloud.world import NOW, CloudWorld, build_world, full_consent
from tests.dbs import fresh_postgres_database


def machine_busy(root: int | None = None) -> float:
    """CPU seconds spent so far by this run and PostgreSQL: process ``root`` (default: this one)
    and its descendants (the cloud's workers, the clients) and every ``postgres`` process, from
    ``/proc``.

    Counting these processes rather than the whole machine keeps anything else running on the
    host out of the figures.
    """
    stats: dict[int, tuple[int, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        rest = text[text.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(rest[1]), name, int(rest[11]) + int(rest[12]))
    ours, me = 0, root or os.getpid()
    for pid, (_ppid, name, ticks) in stats.items():
        walk = pid
        while walk not in (0, 1, me) and walk in stats:
            walk = stats[walk][0]
        if walk == me or name == "postgres":
            ours += ticks
    return ours / os.sysconf("SC_CLK_TCK")


def activatable(world: CloudWorld) -> list[tuple[Vehicle, tuple[str, ...], ActivationPlan]]:
    found = []
    for car in world.demo.vehicles:
        if car.state is not LifecycleState.AT_DEALER:
            continue
        profile = world.demo.profile(car.market)
        bought = tuple(
            sorted(
                e.feature_code
                for e in world.demo.entitlements
                if e.vin == car.vin and e.is_active_at(NOW) and e.source.value != "standard"
            )
        )
        plan = plan_activation(
            car,
            catalog=world.demo.catalog,
            entitlements=world.demo.entitlements,
            profile=profile,
            requested=bought,
            consent=full_consent(profile.notice_version),
            now=NOW,
        )
        if isinstance(plan, ActivationPlan):
            found.append((car, bought, plan))
    return found


def signing_rate(
    world: CloudWorld, car: Vehicle, plan: ActivationPlan, seconds: float
) -> tuple[float, float]:
    """Signatures/s, and the machine's CPU seconds per signature."""
    terms = grant_terms(plan, world.demo.catalog, world.demo.entitlements, NOW)
    images = world.context.signer.image_state()  # read once: the ceiling is signing alone
    count, start, busy = 0, time.perf_counter(), machine_busy()
    while time.perf_counter() - start < seconds:
        world.context.signer.sign(
            plan,
            car,
            freshness=NonceFreshness(uuid.uuid4().hex),
            activation_counter=count + 1,
            feature_until=terms.until,
            feature_requires=terms.requires,
            consent={},
            now=NOW,
            expires=NOW + world.config.activation_validity,
            images=images,
        )
        count += 1
    return count / (time.perf_counter() - start), (machine_busy() - busy) / count


def commit_rate(url: str, workers: int, seconds: float) -> tuple[float, float]:
    """Commits/s, and the machine's CPU seconds per commit (this client and PostgreSQL)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commits (id text PRIMARY KEY, at timestamptz)")
    counts = [0] * workers

    def run(index: int) -> None:
        with psycopg.connect(dsn) as conn:
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                conn.execute("INSERT INTO bench_commits VALUES (%s, now())", (uuid.uuid4().hex,))
                conn.commit()
                counts[index] += 1

    start, busy = time.perf_counter(), machine_busy()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, range(workers)))
    return sum(counts) / (time.perf_counter() - start), (machine_busy() - busy) / sum(counts)


_PAD_VEHICLES = """
INSERT INTO registry_vehicles (vin, model, model_year, plant, build_date, market, option_codes,
    state, dealer_id, owner_ref, activation_counter, offline_counter, feed_digest)
SELECT 'ZZ' || lpad(to_hex(g), 15, '0'), v.model, v.model_year, v.plant, v.build_date, v.market,
    v.option_codes, 'delivered', v.dealer_id, NULL, 1, 0, v.feed_digest
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
    (SELECT * FROM registry_vehicles LIMIT 1) AS v
"""
_PAD_ECUS = """
INSERT INTO registry_ecus (vin, role, logical_address, serial, hardware_number, software_version,
    signing_public_key, sealing_public_key)
SELECT 'ZZ' || lpad(to_hex(g), 15, '0'), e.role, e.logical_address,
    e.serial || '-' || to_hex(g), e.hardware_number, e.software_version,
    e.signing_public_key, e.sealing_public_key
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
    (SELECT * FROM registry_ecus WHERE vin = (SELECT min(vin) FROM registry_ecus)) AS e
"""
_PAD_ACTIVATIONS = """
INSERT INTO registry_activations (request_id, request_digest, vin, open_vin, dealer_id,
    operator_id, status, created_at, expires_at, activation_counter, bundle, outcome)
SELECT 'pad-' || to_hex(g), md5(g::text) || md5(g::text), 'ZZ' || lpad(to_hex(g), 15, '0'), NULL,
    v.dealer_id, 'op-pad', 'applied', now() - interval '30 days', now() - interval '30 days',
    1, NULL, NULL
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
    (SELECT * FROM registry_vehicles LIMIT 1) AS v
"""


def pad_registry(url: str, vehicles: int) -> float:
    """Add ``vehicles`` delivered cars (4 ECUs each as the first car has, one past activation
    each) so lookups run against a registry of realistic size; returns the seconds it took."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    began = time.perf_counter()
    step = 250_000
    with psycopg.connect(dsn, autocommit=True) as conn:
        for start in range(1, vehicles + 1, step):
            bounds = {"start": start, "stop": min(vehicles, start + step - 1)}
            for statement in (_PAD_VEHICLES, _PAD_ECUS, _PAD_ACTIVATIONS):
                conn.execute(statement, bounds)
        conn.execute("ANALYZE")
    return time.perf_counter() - began


@dataclass(frozen=True)
class Load:
    """What the client process needs: the URL, each dealer's TLS files, one body per car."""

    base: str
    tls: dict[str, tuple[str, str, str]]
    bodies: list[tuple[str, dict[str, Any]]]
    workers: int
    seconds: float


def drive(load: Load, path: str | None = None) -> tuple[int, float, list[float], float]:
    """Run in its own process: ``workers`` keep-alive clients, each on its own cars.

    Returns (authorisations, seconds measured, latencies, CPU seconds the run and PostgreSQL
    spent meanwhile: connection set-up is left out). A separate process keeps the
    clients' Python work off the server's interpreter lock; the standard library's HTTP client
    (one kept-alive connection per worker and dealer) keeps that work small on a shared machine.
    With ``path``, each client GETs ``path`` instead (the HTTP + TLS floor).
    """
    from forecourt.trust.tls import client_ssl_context

    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    ready = threading.Barrier(load.workers + 1)
    contexts = {
        d: client_ssl_context(Path(c), Path(k), Path(a)) for d, (c, k, a) in load.tls.items()
    }

    host, port = urlsplit(load.base).hostname or "", urlsplit(load.base).port or 443

    def post(conn: http.client.HTTPSConnection, path: str, body: object) -> tuple[int, bytes]:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()  # read fully: the connection is kept alive

    def work(index: int) -> int:
        mine = load.bodies[index :: load.workers]
        conns = {
            d: http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
            for d, ctx in contexts.items()
        }
        for conn in conns.values():  # handshakes happen before the clock starts
            conn.request("GET", "/v1/features")
            conn.getresponse().read()
        ready.wait()
        done = 0
        while not stop.is_set() and path is not None:
            conn = conns[mine[done % len(mine)][0]]
            began = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            with lock:
                latencies.append(time.perf_counter() - began)
            done += 1
        while not stop.is_set():
            dealer, template = mine[done % len(mine)]
            conn = conns[dealer]
            body = {**template, "request_id": uuid.uuid4().hex, "nonce": uuid.uuid4().hex}
            began = time.perf_counter()
            status, text = post(conn, "/v1/activations", body)
            elapsed = time.perf_counter() - began
            if status != 201:
                raise SystemExit(f"unexpected {status}: {text.decode(errors='replace')}")
            with lock:
                latencies.append(elapsed)
            post(conn, f"/v1/activations/{body['request_id']}/report", {"outcome": "applied"})
            done += 1
        for conn in conns.values():
            conn.close()
        return done

    with ThreadPoolExecutor(load.workers) as pool:
        futures = [pool.submit(work, i) for i in range(load.workers)]
        ready.wait()
        start, busy = time.perf_counter(), machine_busy(os.getppid())
        timer = threading.Timer(load.seconds, stop.set)
        timer.start()
        total = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - start
        cpu = machine_busy(os.getppid()) - busy
    return total, elapsed, latencies, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--registry",
        type=int,
        default=0,
        help="Extra delivered cars (with ECUs and a past activation each) in the registry.",
    )
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 10.0
    workers = args.concurrency
    configure_logging("ERROR")
    from forecourt.cloud.app import build_context, create_app
    from forecourt.cloud.server import uvicorn_config
    from forecourt.http.workers import start_workers

    with fresh_postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
        world = build_world(url, vehicles=120 if args.quick else 300)
        cars = activatable(world)
        if args.registry:
            padded = pad_registry(url, args.registry)
            print(f"registry padded with {args.registry:,} cars in {padded:.0f} s")
        if len(cars) < workers:
            raise SystemExit(f"only {len(cars)} activatable cars for {workers} workers")
        files = world.tls_files(Path(tmp) / "server")
        dealers = sorted({str(c.dealer_id) for c, _f, _p in cars})  # cars at a dealer
        tls = {}
        for dealer in dealers:
            p = world.dealer_certs[dealer].write_pem_bundle(Path(tmp) / dealer, name="edge")
            tls[dealer] = (str(p.cert), str(p.key), str(p.ca))
        bodies = [(str(c.dealer_id), world.request(c, f)) for c, f, _p in cars]
        spawn = multiprocessing.get_context("spawn")
        world.context.db.dispose()  # the workers fork: no pooled connection may cross

        def build() -> Any:
            app = create_app(world.config, build_context(world.config))
            return uvicorn_config(app, files, lifespan="off", log_level="critical")

        pool = start_workers(build, "127.0.0.1", 0, args.workers)
        try:
            with ProcessPoolExecutor(1, mp_context=spawn) as client:
                load = Load(pool.url(), tls, bodies, workers, seconds)
                floor, floor_s, _lat, floor_cpu = client.submit(drive, load, "/v1/health").result()
                total, elapsed, latencies, cycle_cpu = client.submit(drive, load).result()
        finally:
            pool.stop()
        car, _features, plan = cars[0]
        sign, sign_cpu = signing_rate(world, car, plan, seconds / 2)
        commits, commit_cpu = commit_rate(url, workers, seconds / 2)
        world.context.db.dispose()
    report(
        args,
        (total, elapsed, latencies),
        sign,
        commits,
        floor / floor_s,
        cpu={
            "cycle": cycle_cpu / total,
            "health": floor_cpu / floor,
            "sign": sign_cpu,
            "commit": commit_cpu,
        },
    )


def report(
    args: argparse.Namespace,
    measured: tuple[int, float, list[float]],
    sign: float,
    commits: float,
    floor: float,
    *,
    cpu: dict[str, float],
) -> None:
    total, elapsed, latencies = measured
    rate = total / elapsed
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    bound = min(sign, commits)
    clients = args.concurrency
    print(f"concurrency                 {clients}   (clients in a separate process, keep-alive)")
    print(f"server workers              {args.workers}   (processes on one port, SO_REUSEPORT)")
    print(f"registry                    {args.registry:,} extra delivered cars")
    print(
        f"authorisations/s            {rate:10.1f}   ({total} in {elapsed:.1f} s, mTLS, PostgreSQL)"
    )
    print(f"latency p50 / p99           {p50:7.1f} ms / {p99:.1f} ms")
    print(f"ceiling: bundle signing/s   {sign:10.1f}   (in-process, same plan)")
    print(f"ceiling: PG commits/s       {commits:10.1f}   (single-row, {clients} connections)")
    print(f"ratio to the lower bound    {rate / bound:10.1%}   (goal >= 50 %)")
    print(f"for scale: GET /v1/health   {floor:10.1f}   (mTLS request, no database, no signature)")
    # Where the goal stands against the machine: at 50 % of the bound, the whole machine may
    # spend this much CPU per cycle; the measured parts every cycle needs come first.
    cores = os.cpu_count() or 1
    budget = cores / (0.5 * bound)
    parts = cpu["health"] * 2 + cpu["commit"] + cpu["sign"]
    print("CPU per operation           (the run's processes and PostgreSQL, from /proc)")
    print(f"  authorise + report cycle  {cpu['cycle'] * 1000:7.2f} ms")
    print(f"  GET /v1/health            {cpu['health'] * 1000:7.2f} ms   (a cycle makes two)")
    print(f"  PG single-row commit      {cpu['commit'] * 1000:7.2f} ms")
    print(f"  bundle signing            {cpu['sign'] * 1000:7.2f} ms")
    print(
        f"  budget per cycle at goal  {budget * 1000:7.2f} ms   ({cores} cores / 50 % of the bound;"
        f" 2 requests + 1 commit + 1 signature alone take {parts * 1000:.2f} ms)"
    )


if __name__ == "__main__":
    main()
