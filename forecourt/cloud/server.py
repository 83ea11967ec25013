"""Serving the cloud over mutual TLS with uvicorn, the peer certificate handed to the app.

The listener's ``SSLContext`` is the trust layer's
(:func:`forecourt.trust.tls.server_ssl_context`: TLS 1.2 or later, ECDHE with AEAD suites only,
the OEM root as the only anchor, the issuing CA's CRL checked at the handshake), handed to uvicorn
through ``ssl_context_factory`` so uvicorn's own defaults (every suite OpenSSL allows) never apply.
uvicorn verifies the client certificate during the handshake but does not put it in the ASGI
scope. :class:`MutualTlsH11Protocol` reads the verified peer
certificate from the connection's ``ssl_object`` and adds it to every request's scope as the ASGI
TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM), which
:mod:`forecourt.cloud.auth` reads. The app never sees a certificate the handshake did not verify,
and re-verifies it anyway (purpose, CRL, registry revocations) at its own clock.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from forecourt.http.serving import serve_in_thread as serve
from forecourt.trust.tls import server_ssl_context

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _WithTlsExtension:
    """Wraps the app for one connection: adds the connection's TLS facts to each scope."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self._app = app
        self._tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = self._tls
            scope = {**scope, "extensions": extensions}
        await self._app(scope, receive, send)


def _tls_extension(transport: asyncio.Transport) -> dict[str, Any] | None:
    """The ASGI TLS extension of one connection, read once from its verified peer."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    return {
        "client_cert_chain": chain,
        "tls_version": ssl_object.version(),
        "cipher_suite": (ssl_object.cipher() or ("",))[0],
    }


class MutualTlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus the ASGI TLS extension filled from the verified peer."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = _tls_extension(transport)
        if tls is not None:
            self.app = _WithTlsExtension(self.app, tls)


class MutualTlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools (C parser) protocol, plus the same TLS extension; the default."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = _tls_extension(transport)
        if tls is not None:
            self.app = _WithTlsExtension(self.app, tls)


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate (leaf + chain), its key, the CA bundle client certs chain to, and
    the issuing CA's CRL (PEM) that the handshake checks a client certificate against."""

    cert: Path
    key: Path
    client_ca: Path
    crl: Path | None = None


def uvicorn_config(
    app: Any, tls: TlsFiles, *, staff_without_certificate: bool = False, **kwargs: Any
) -> uvicorn.Config:
    """A uvicorn config that verifies client certificates and fills the TLS extension.

    By default a certificate is required at the handshake (a dealer-only listener). With
    ``staff_without_certificate`` the handshake lets a client without one through (a presented
    certificate is still verified), so OEM staff can use tokens on the same listener; dealer
    routes then refuse such a caller with ``client_certificate_required``.

    The context is built when uvicorn loads the config; a CRL published later to ``tls.crl``
    applies from the next handshake on (:mod:`forecourt.trust.crl_reload`) and per request.

    HTTP parsing is httptools' (C) and the event loop uvloop's unless ``http``/``loop`` say
    otherwise: per request they cost a fraction of h11 and the pure-Python asyncio loop.
    """
    kwargs.setdefault("http", MutualTlsHttpToolsProtocol)
    kwargs.setdefault("loop", "uvloop")

    def context_factory(
        _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        return server_ssl_context(
            tls.cert,
            tls.key,
            tls.client_ca,
            tls.crl,
            client_certificate_optional=staff_without_certificate,
        )

    # The file names are for those who read the config (they are what the context loads);
    # uvicorn builds nothing from them once a factory is given.
    return uvicorn.Config(
        app,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        ssl_context_factory=context_factory,
        **kwargs,
    )


@contextmanager
def serve_in_thread(
    app: Any, tls: TlsFiles, host: str = "127.0.0.1", *, staff_without_certificate: bool = False
) -> Iterator[str]:
    """Serve ``app`` over mutual TLS on ``host``, a free port; yield the base URL."""
    config = uvicorn_config(
        app,
        tls,
        staff_without_certificate=staff_without_certificate,
        lifespan="off",
        log_level="critical",
        access_log=False,
    )
    with serve(config, host, name="cloud-server") as url:
        yield url
