"""How the console is exposed: HTTPS with the box's certificate, or plain HTTP on loopback only.

Operators sign in with password and TOTP and carry a session cookie; on a dealer LAN anyone on
the network segment can read plain HTTP. So ``edge serve`` refuses to bind a non-loopback address
without a TLS certificate unless ``--insecure-http`` is given explicitly, and that choice is
logged as a warning each start. Over TLS the session and CSRF cookies are ``Secure``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from forecourt.logging import get_logger

_log = get_logger("edge.console.transport")


class InsecureBindRefused(ValueError):
    """A non-loopback address without TLS, and plain HTTP was not asked for explicitly."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"refusing plain HTTP on {host}: operators' passwords, TOTP codes and session "
            "cookies would cross the LAN in clear; give --tls-cert and --tls-key "
            "(or --insecure-http to accept the risk)"
        )
        self.host = host


class TlsMaterialMissing(ValueError):
    """Only one of certificate and key was given, or a file is not there."""


@dataclass(frozen=True, slots=True)
class ConsoleTransport:
    """The scheme the console is served with and the uvicorn TLS files, if any."""

    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a LAN address


def console_transport(
    host: str,
    port: int,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    insecure_http: bool = False,
) -> ConsoleTransport:
    """Decide how to serve; raises when the choice would expose credentials on the network."""
    if (tls_cert is None) != (tls_key is None):
        raise TlsMaterialMissing("--tls-cert and --tls-key go together")
    if tls_cert is not None and tls_key is not None:
        missing = [str(p) for p in (tls_cert, tls_key) if not p.is_file()]
        if missing:
            raise TlsMaterialMissing(f"no such file: {', '.join(missing)}")
        return ConsoleTransport(host, port, tls_cert, tls_key)
    if not is_loopback(host):
        if not insecure_http:
            _log.warning("console_plain_http_refused", host=host)
            raise InsecureBindRefused(host)
        _log.warning("console_plain_http_on_network", host=host, port=port)
    return ConsoleTransport(host, port)
