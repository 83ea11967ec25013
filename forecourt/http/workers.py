"""Several uvicorn worker processes behind one port, so one service uses every core.

One Python process serves requests on one core (the interpreter lock), and an authorisation is
CPU work: TLS, parsing, the decision, the signature. :func:`start_workers` forks ``workers``
processes that each build their own app (their own database pool, their own HSM session) and
serve it with uvicorn.

* **Balancing.** Every worker gets its own listening socket bound to the same address with
  ``SO_REUSEPORT``, so the kernel spreads new connections across workers by hash. Edges keep their
  connections alive; one shared socket lets whichever worker wakes first take most of them, while
  per-worker sockets keep the share even.
* **Fork safety.** The parent forks before anything opens a database connection, a thread or a
  PKCS#11 session: ``build`` runs in the child. Whatever the parent prepared (settings, migrated
  schema, passwords read from the environment) is inherited as plain memory.
* **Readiness.** Each child writes one byte to a pipe once uvicorn listens; the parent waits for
  ``workers`` bytes, or for a child's early exit (a start-up failure), in one ``select`` over the
  pipe and the children's pidfds: no polling.
* **Supervision.** :meth:`WorkerPool.supervise` forwards SIGTERM/SIGINT to the workers and waits for
  them to drain; a worker that dies while serving is replaced on its socket and the death logged.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from types import FrameType

import uvicorn

from forecourt.logging import get_logger

_log = get_logger("http.workers")

#: How long the workers may take to listen before start-up counts as failed.
START_TIMEOUT_S = 60.0

#: Exit status of a worker whose ``build`` or server failed before it listened.
EXIT_START_FAILED = 3

#: Worker deaths within :data:`CRASH_WINDOW_S` after which the pool gives up (a crash loop).
MAX_CRASHES = 5
CRASH_WINDOW_S = 60.0


class WorkersDidNotStart(RuntimeError):
    """A worker exited, or did not listen in time, before the pool was ready."""


class _ReadyServer(uvicorn.Server):
    """uvicorn that reports on a pipe once its sockets listen."""

    def __init__(self, config: uvicorn.Config, ready_fd: int | None) -> None:
        super().__init__(config)
        self._ready_fd = ready_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._ready_fd is not None:
            os.write(self._ready_fd, b"1")
            os.close(self._ready_fd)
            self._ready_fd = None


def _listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@dataclass
class WorkerPool:
    """The forked workers: one socket each, all on ``host:port``."""

    host: str
    port: int
    build: Callable[[], uvicorn.Config]
    sockets: list[socket.socket]
    pids: dict[int, int] = field(default_factory=dict)
    """Worker pid -> index of its socket."""
    _stopping: bool = False

    def url(self, scheme: str = "https") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def _fork(self, index: int, ready_fd: int | None) -> int:
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_START_FAILED
            try:
                for other, sock in enumerate(self.sockets):
                    if other != index:
                        sock.close()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _ReadyServer(self.build(), ready_fd).run(sockets=[self.sockets[index]])
                code = 0
            except BaseException as exc:  # a worker must never return into the parent's code
                _log.error("worker_failed", worker=index, error=f"{type(exc).__name__}: {exc}")
            finally:
                os._exit(code)
        self.pids[pid] = index
        return pid

    def _signal_all(self, signum: signal.Signals) -> None:
        for pid in list(self.pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every worker (uvicorn drains open requests) and reap them; SIGKILL the ones
        still running after ``timeout_s``."""
        self._stopping = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        killed = False
        while self.pids:
            left = deadline - time.monotonic()
            if left <= 0 and not killed:
                self._signal_all(signal.SIGKILL)
                killed = True
            exited, _readable = _wait(self.pids, None if killed else left)
            for pid, _status in exited:
                self.pids.pop(pid, None)
        for sock in self.sockets:
            sock.close()

    def supervise(self) -> int:
        """Serve until SIGTERM/SIGINT: replace workers that die, then stop them all.

        Returns the exit status for the command: 0 after a requested stop, 1 when workers keep
        dying (:data:`MAX_CRASHES` within :data:`CRASH_WINDOW_S`), after stopping the rest.
        """
        crashes: list[float] = []

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            _log.info("workers_stopping", signal=signal.Signals(signum).name)
            self._stopping = True
            self._signal_all(signal.SIGTERM)

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while self.pids:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                index = self.pids.pop(pid, None)
                if index is None or self._stopping:
                    continue
                _log.error("worker_died", worker=index, pid=pid, status=_describe(status))
                now = time.monotonic()
                crashes = [t for t in crashes if now - t < CRASH_WINDOW_S] + [now]
                if len(crashes) >= MAX_CRASHES:
                    _log.error("workers_crash_loop", crashes=len(crashes), window_s=CRASH_WINDOW_S)
                    self.stop(timeout_s=10.0)
                    return 1
                self._fork(index, None)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for sock in self.sockets:
                sock.close()
        return 0


def _wait(
    pids: Collection[int], timeout_s: float | None, watch: Sequence[int] = ()
) -> tuple[list[tuple[int, int]], list[int]]:
    """Wait until one of ``pids`` exits or one of the ``watch`` descriptors is readable, for at
    most ``timeout_s`` (``None``: no limit). Returns the exited children, reaped, as
    (pid, status), and the readable descriptors. A child already reaped counts as exited."""
    exited: list[tuple[int, int]] = []
    handles: dict[int, int] = {}
    for pid in pids:
        try:
            handles[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            exited.append((pid, 0))
    try:
        ready, _w, _x = select.select([*handles, *watch], [], [], 0 if exited else timeout_s)
    finally:
        for handle in handles:
            os.close(handle)
    exited += [os.waitpid(handles[fd], 0) for fd in ready if fd in handles]
    return exited, [fd for fd in ready if fd in watch]


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


def start_workers(
    build: Callable[[], uvicorn.Config],
    host: str,
    port: int,
    workers: int,
    *,
    timeout_s: float = START_TIMEOUT_S,
) -> WorkerPool:
    """Fork ``workers`` processes serving ``build()`` on ``host:port`` (0: a free port).

    Returns once every worker listens. Raises :class:`WorkersDidNotStart` (after stopping the
    others) if one exits first or the time runs out; ``OSError`` if the address is taken.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    first = _listening_socket(host, port, reuse_port=workers > 1)
    bound = int(first.getsockname()[1])
    sockets = [first]
    try:
        sockets += [_listening_socket(host, bound, reuse_port=True) for _ in range(workers - 1)]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    pool = WorkerPool(host, bound, build, sockets)
    read_fd, write_fd = os.pipe()
    try:
        for index in range(workers):
            pool._fork(index, write_fd)
        os.close(write_fd)
        write_fd = -1
        _await_ready(pool, read_fd, workers, timeout_s)
    except BaseException:
        pool.stop(timeout_s=5.0)
        raise
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    _log.info("workers_ready", workers=workers, host=host, port=bound)
    return pool


def _await_ready(pool: WorkerPool, read_fd: int, workers: int, timeout_s: float) -> None:
    """Block until ``workers`` ready bytes arrive; a worker exiting first is a failure."""
    deadline = time.monotonic() + timeout_s
    ready = 0
    while ready < workers:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WorkersDidNotStart(f"{workers - ready} of {workers} workers not listening")
        exited, readable = _wait(pool.pids, left, [read_fd])
        for pid, status in exited:
            pool.pids.pop(pid, None)
            raise WorkersDidNotStart(f"a worker exited before listening ({_describe(status)})")
        if readable:
            chunk = os.read(read_fd, workers)
            if not chunk:  # every write end closed: all workers are gone
                raise WorkersDidNotStart("every worker exited before listening")
            ready += len(chunk)


__all__ = ["WorkerPool", "WorkersDidNotStart", "start_workers"]
