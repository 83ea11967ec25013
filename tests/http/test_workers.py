"""Worker processes on one port: every worker takes connections, a dead one is replaced, a
worker that cannot start fails the start, and stopping leaves no process and no listener."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from forecourt.http.workers import WorkerPool, WorkersDidNotStart, start_workers


async def _whoami(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """A tiny ASGI app answering with the serving process's pid."""
    assert scope["type"] == "http"
    body = str(os.getpid()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _config() -> uvicorn.Config:
    return uvicorn.Config(_whoami, lifespan="off", log_level="critical", access_log=False)


def _pids_answering(pool: WorkerPool, connections: int) -> set[int]:
    """The pids behind ``connections`` fresh connections (one request each)."""
    seen = set()
    for _ in range(connections):
        with httpx.Client(base_url=pool.url("http"), timeout=10) as client:
            seen.add(int(client.get("/").text))
    return seen


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    started = start_workers(_config, "127.0.0.1", 0, 2)
    try:
        yield started
    finally:
        started.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_worker_takes_new_connections(pool: WorkerPool) -> None:
    # SO_REUSEPORT spreads connections by hash: 40 connections all on one of two workers would
    # happen with probability 2**-39.
    assert _pids_answering(pool, 40) == set(pool.pids)
    assert len(pool.pids) == 2


def test_stop_reaps_every_worker_and_frees_the_port(pool: WorkerPool) -> None:
    workers = list(pool.pids)
    pool.stop()
    assert pool.pids == {}
    assert not any(_alive(pid) for pid in workers)
    with pytest.raises(httpx.ConnectError):
        httpx.get(pool.url("http"), timeout=2)


def test_stop_kills_a_worker_that_does_not_drain_within_the_timeout() -> None:
    # A request that never finishes keeps uvicorn from shutting down on SIGTERM: stop() must
    # still return once its timeout passes, with the worker killed.
    arrived_r, arrived_w = os.pipe()

    async def stuck(scope: dict[str, Any], receive: Callable[..., Any], _send: Any) -> None:
        if scope["type"] == "http":
            os.write(arrived_w, b"1")
            await asyncio.Event().wait()  # never set

    def config() -> uvicorn.Config:
        return uvicorn.Config(stuck, lifespan="off", log_level="critical", access_log=False)

    pool = start_workers(config, "127.0.0.1", 0, 1)
    worker = next(iter(pool.pids))

    def ask() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the connection dies with the worker
            httpx.get(pool.url("http"), timeout=30)

    client = threading.Thread(target=ask, daemon=True)
    client.start()
    try:
        assert os.read(arrived_r, 1) == b"1"  # the request is in flight in the worker
        pool.stop(timeout_s=0.5)
    finally:
        os.close(arrived_r)
        os.close(arrived_w)
    assert pool.pids == {}
    assert not _alive(worker)


def test_a_worker_that_cannot_build_its_app_fails_the_start() -> None:
    def broken() -> uvicorn.Config:
        raise RuntimeError("signing key unreadable")

    with pytest.raises(WorkersDidNotStart, match="exited before listening"):
        start_workers(broken, "127.0.0.1", 0, 2, timeout_s=30)


def test_a_taken_port_is_refused_before_any_fork() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(OSError):
            start_workers(_config, "127.0.0.1", taken.getsockname()[1], 2)


def test_supervise_replaces_a_dead_worker_and_stops_on_sigterm(pool: WorkerPool) -> None:
    victim = next(iter(pool.pids))
    replaced = threading.Event()
    report: dict[str, Any] = {}

    def operator() -> None:
        try:
            os.kill(victim, signal.SIGKILL)
            # The replacement listens on the victim's socket: keep asking until a pid that was not
            # there before answers (each try is a new connection, so the kernel may pick either).
            for _ in range(2000):
                answering = _pids_answering(pool, 1)
                new = answering - {victim} - set(report.get("survivors", ()))
                if new:
                    report["replacement"] = new.pop()
                    break
            replaced.set()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # supervise forwards it and returns

    report["survivors"] = [pid for pid in pool.pids if pid != victim]
    thread = threading.Thread(target=operator)
    thread.start()
    code = pool.supervise()
    thread.join()
    assert code == 0
    assert replaced.is_set()
    assert report.get("replacement") not in (None, victim)
    assert pool.pids == {}
    assert not _alive(report["replacement"])
