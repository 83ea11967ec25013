"""uvicorn in a background thread: bind first, wait for startup on an event, stop at once.

The cloud's tests and bench, the demo (cloud and edge console in one process), the blob and
console tests all serve an ASGI app this way, so it is written once: the socket is bound before
the thread starts (port 0 picks a free one, so parallel runs never collide), readiness is an event
set by the server's own ``startup`` (never a sleep or a poll), and :meth:`ThreadedServer.stop`
wakes uvicorn's main loop at once instead of waiting for its next tick. Anything particular to a
service (TLS, protocol classes, lifespan) stays in the ``uvicorn.Config`` its caller builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

#: How long a server may take to listen, and a stopping one to finish, before we give up.
DEFAULT_TIMEOUT_S = 20.0


class ServerDidNotStart(RuntimeError):
    """The server thread did not listen within the time allowed (port taken, bad certificate)."""


class ThreadedServer(uvicorn.Server):
    """uvicorn with a ``started_event`` (set once sockets listen) and a thread-safe ``stop``."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.started_event = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        await super().startup(sockets)
        self.started_event.set()

    async def main_loop(self) -> None:
        """uvicorn's once-per-0.1 s tick, woken at once by :meth:`stop` instead of polling."""
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            assert self._wake is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    def stop(self) -> None:
        """Ask the server to shut down, from any thread."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)


class BackgroundServer:
    """One uvicorn server on an already bound socket, run by a daemon thread."""

    def __init__(self, config: uvicorn.Config, host: str, port: int, name: str) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise ServerDidNotStart(f"{name}: cannot listen on {host}:{port}: {exc}") from exc
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self.scheme = "https" if config.ssl_certfile else "http"
        self._server = ThreadedServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=name, daemon=True
        )
        self._name = name

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. ``https://127.0.0.1:43211``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = DEFAULT_TIMEOUT_S) -> BackgroundServer:
        """Run the server; return once it listens, or stop it and raise."""
        self._thread.start()
        if not self._server.started_event.wait(timeout) or not self._server.started:
            self.stop()
            raise ServerDidNotStart(f"{self._name} did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        """Shut the server down and release its socket; safe to call more than once."""
        self._server.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=DEFAULT_TIMEOUT_S)
        self._sock.close()


@contextmanager
def serve_in_thread(
    config: uvicorn.Config, host: str = "127.0.0.1", port: int = 0, *, name: str = "uvicorn"
) -> Iterator[str]:
    """Serve ``config.app`` on ``host:port`` (0: any free port) for the block; yield its URL."""
    server = BackgroundServer(config, host, port, name).start()
    try:
        yield server.url
    finally:
        server.stop()
