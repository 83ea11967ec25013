"""Request bodies bounded, and dealer routes closed to certificate-less callers, before FastAPI.

FastAPI reads and parses a request body before it runs a route's dependencies, so an
authentication dependency alone lets anyone make the cloud read whatever they send. The listener
admits callers without a client certificate (OEM staff use bearer tokens on it), so this pure
ASGI middleware, in front of the app, decides from the request line and headers alone:

* a dealer route (one that depends on :func:`forecourt.cloud.auth.require_dealer`) called
  without a verified client certificate is answered 401 ``client_certificate_required`` without
  reading a byte of its body;
* a declared ``Content-Length`` above the caller's limit is answered 413
  ``request_body_too_large`` at once; a body without one (chunked) is counted as it arrives and
  cut at the limit with the same answer;
* the limit is :attr:`BodyLimits.api` for a caller holding a client certificate or presenting a
  bearer token (the app still verifies either) and :attr:`BodyLimits.anonymous` otherwise;
* package uploads (``PUT /v1/packages/...``) pass untouched: they stream to disk under the blob
  store's own bound (:class:`forecourt.blobs.FileBlobStore` ``max_blob_size``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from enum import StrEnum
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match

from forecourt.cloud.auth import peer_certificate_pems, require_dealer
from forecourt.cloud.config import BodyLimits
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.http.problems import problem_response
from forecourt.logging import get_logger

__all__ = ["RequestBodyTooLarge", "RequestGuard", "RouteClass", "classify_routes"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = get_logger("cloud.limits")

PACKAGE_UPLOAD_PREFIX = "/v1/packages/"


class RouteClass(StrEnum):
    """What the middleware needs to know of a route before its body arrives."""

    DEALER = "dealer"
    """Only a dealer edge (client certificate) may call it."""
    OTHER = "other"
    """Staff, dealer-or-staff and auth-less routes (and unknown paths)."""
    PACKAGE_UPLOAD = "package_upload"
    """Streams to the blob store under its own bound."""


class RequestBodyTooLarge(Exception):
    """A request body passed its limit; ``received`` is how much had arrived (or was declared)."""

    def __init__(self, limit: int, received: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes (at least {received})")
        self.limit = limit
        self.received = received


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, including those of routers FastAPI keeps nested (``include_router``
    in FastAPI 0.16x keeps the router; its routes carry their own ``/v1/...`` paths here)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _api_routes(nested.routes)


def classify_routes(routes: Iterable[BaseRoute]) -> Callable[[Scope], RouteClass]:
    """A classifier over ``routes`` (an app's, all included): matches path and method only.

    Only the routes' own dependencies are read: a dependency an ``include_router`` call adds
    (the ledger's dealer-or-staff check) does not make a route a dealer route.
    """
    dealer_routes = [
        route for route in _api_routes(routes) if require_dealer in set(_calls(route.dependant))
    ]

    def classify(scope: Scope) -> RouteClass:
        path = str(scope.get("path", ""))
        if scope.get("method") == "PUT" and path.startswith(PACKAGE_UPLOAD_PREFIX):
            return RouteClass.PACKAGE_UPLOAD
        for route in dealer_routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return RouteClass.DEALER
        return RouteClass.OTHER

    return classify


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


def _declared_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None or not raw.strip().isdigit():
        return None  # absent; a malformed one the HTTP parser has refused already
    return int(raw)


class RequestGuard:
    """The ASGI middleware described in the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        classify: Callable[[Scope], RouteClass],
        limits: BodyLimits | None = None,
    ) -> None:
        self._app = app
        self._classify = classify
        self._limits = limits or BodyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        kind = self._classify(scope)
        if kind is RouteClass.PACKAGE_UPLOAD:
            await self._app(scope, receive, send)
            return
        has_certificate = bool(peer_certificate_pems(scope))
        if kind is RouteClass.DEALER and not has_certificate:
            await self._refuse(
                scope,
                send,
                CloudProblem(
                    401,
                    ProblemCode.CLIENT_CERTIFICATE_REQUIRED,
                    "Client certificate refused",
                    "a dealer client certificate is required",
                ),
            )
            return
        credentialed = has_certificate or _header(scope, b"authorization") is not None
        limit = self._limits.api if credentialed else self._limits.anonymous
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, _too_large(RequestBodyTooLarge(limit, declared)))
            return
        await self._bounded(scope, receive, send, limit)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app with a receive that counts and cuts, and answer 413 if it was cut.

        The app may turn the cut into its own error (FastAPI answers a failed body read with
        400), so once the limit has passed every response it starts is replaced by the 413.
        """
        received = 0
        cut: RequestBodyTooLarge | None = None
        started = False

        async def counted() -> Message:
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = RequestBodyTooLarge(limit, received)
                    raise cut
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if cut is None:
                if message["type"] == "http.response.start":
                    started = True
                await send(message)
            elif not started:
                started = True
                await self._refuse(scope, send, _too_large(cut))

        try:
            await self._app(scope, counted, guarded)
        except RequestBodyTooLarge as exc:
            if not started:
                started = True
                await self._refuse(scope, send, _too_large(exc))

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        problem: CloudProblem,
    ) -> None:
        path = str(scope.get("path", ""))
        _log.warning(
            "request_refused",
            path=path,
            method=scope.get("method"),
            status=problem.status,
            code=problem.code.value,
            detail=problem.detail,
        )
        # The body stays unread: the connection must not be reused for another request.
        response = problem_response(problem, path, headers={"connection": "close"})

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)


def _too_large(exc: RequestBodyTooLarge) -> CloudProblem:
    return CloudProblem(
        413,
        ProblemCode.REQUEST_BODY_TOO_LARGE,
        "Request body too large",
        str(exc),
        limit=exc.limit,
    )
