"""The demo's two servers, each on a chosen host and port (0: any free port).

The demo runs the cloud (mutual TLS) and the edge console (plain HTTP on loopback) in one
process; each is a :class:`forecourt.http.serving.BackgroundServer` (own thread and event loop,
bound before it reports ready, stopped without polling loops of our own).
"""

from __future__ import annotations

from typing import Any

import uvicorn

from forecourt.cloud.server import TlsFiles, uvicorn_config
from forecourt.http.serving import BackgroundServer

#: How long a stopping server waits for open connections (kept-alive clients, an open console
#: tab's event stream) before closing them: the demo stops at once on Ctrl-C.
GRACE_S = 1


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
