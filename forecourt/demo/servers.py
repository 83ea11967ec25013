"""uvicorn in a background thread on a chosen host and port (0: any free port).

The demo runs the cloud (mutual TLS) and the edge console (plain HTTP on loopback) in one
process; each server gets its own thread and event loop, binds before it reports ready, and
stops on :meth:`BackgroundServer.stop` without polling loops of our own.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn

from forecourt.cloud.server import ThreadedServer, TlsFiles, uvicorn_config

#: How long a stopping server waits for open connections (kept-alive clients, an open console
#: tab's event stream) before closing them: the demo stops at once on Ctrl-C.
GRACE_S = 1


class ServerDidNotStart(RuntimeError):
    """The server thread did not listen within the time allowed (port taken, bad certificate)."""


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
        self._server = ThreadedServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=name, daemon=True
        )
        self._name = name

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self._thread.start()
        if not self._server.started_event.wait(timeout) or not self._server.started:
            self.stop()
            raise ServerDidNotStart(f"{self._name} did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        stop = getattr(self._server, "stop", None)
        if callable(stop):
            stop()
        else:
            self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=20)
        self._sock.close()


def cloud_server(app: Any, tls: TlsFiles, host: str, port: int) -> BackgroundServer:
    """The cloud over mutual TLS (a dealer certificate is required at the handshake)."""
    config = uvicorn_config(
        app,
        tls,
        lifespan="off",
        log_level="critical",
        access_log=False,
        timeout_graceful_shutdown=GRACE_S,
    )
    return BackgroundServer(config, host, port, "cloud-server")


def console_server(app: Any, host: str, port: int) -> BackgroundServer:
    """The edge console over HTTP (loopback only in the demo; TLS in front in a store)."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="critical",
        access_log=False,
        loop="asyncio",
        timeout_graceful_shutdown=GRACE_S,
    )
    return BackgroundServer(config, host, port, "edge-console")
