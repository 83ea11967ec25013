"""Real HTTP for tests: uvicorn on 127.0.0.1, port 0, in a background thread.

Startup is awaited on an event set by the server's own ``startup``, never by sleeping. ``Tap`` is
an ASGI middleware that records what each request asked for and how many body bytes were sent,
and can cut the connection after N bytes or tamper with the answer, to exercise the downloader.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from forecourt.http.serving import serve_in_thread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def serve(app: Any) -> AbstractContextManager[str]:
    """Serve ``app`` on a fresh loopback port; yield its base URL."""
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False)
    return serve_in_thread(config, name="blob-test-server")


class ConnectionCut(Exception):
    """Raised inside the app to make the server drop the connection mid-body."""


@dataclass
class Seen:
    method: str
    headers: dict[str, str]
    status: int = 0
    body_bytes: int = 0


@dataclass
class Tap:
    """ASGI middleware recording requests; optional faults, each applied to the first N requests."""

    app: ASGIApp
    cut_after: int | None = None
    cut_requests: int = 0
    fail_status: int | None = None
    fail_requests: int = 0
    drop_range: bool = False
    flip_byte_at: int | None = None
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        record = Seen(scope["method"], headers)
        self.seen.append(record)
        index = len(self.seen)
        if self.fail_status is not None and index <= self.fail_requests:
            await _plain(send, self.fail_status)
            record.status = self.fail_status
            return
        if self.drop_range:
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
        cut = self.cut_after if index <= self.cut_requests else None

        async def tapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            elif message["type"] == "http.response.body":
                body = bytes(message.get("body", b""))
                if self.flip_byte_at is not None:
                    offset = self.flip_byte_at - record.body_bytes
                    if 0 <= offset < len(body):
                        body = body[:offset] + bytes([body[offset] ^ 0xFF]) + body[offset + 1 :]
                if cut is not None and record.body_bytes + len(body) >= cut:
                    head = body[: cut - record.body_bytes]
                    record.body_bytes += len(head)
                    await send({"type": "http.response.body", "body": head, "more_body": True})
                    raise ConnectionCut(f"cut after {cut} bytes")
                record.body_bytes += len(body)
                message = {**message, "body": body}
            await send(message)

        await self.app(scope, receive, tapped)


async def _plain(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})
