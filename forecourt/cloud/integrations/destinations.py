"""Where a webhook may be sent: only to globally routable addresses, dialled as vetted.

A subscription URL is chosen by OEM staff and its host name by a partner's DNS, so neither may
turn the cloud's signed ``POST`` against the carmaker's own network (the database host, the
cloud metadata service at 169.254.169.254, an admin port). The rules:

* The host is resolved and **every** address it resolves to must be globally routable: no
  loopback, private (RFC 1918), link-local (169.254.0.0/16, fe80::/10), shared (CGNAT,
  100.64.0.0/10), unique-local (fc00::/7), multicast, unspecified, reserved, documentation or
  benchmarking ranges; an IPv4 address embedded in IPv6 (``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged as that IPv4 address.
* Loopback is allowed only when the deployment opts in (``FORECOURT_WEBHOOK_ALLOW_LOOPBACK=1``),
  for a receiver on the same host in development and tests; in production the opt-in is refused.
* The check runs when a subscription is made and again at each connection the delivery opens,
  and the connection goes to the address that was checked: :class:`VettingBackend` resolves,
  vets and dials in one step, so a DNS answer that changes between a check and the dial (DNS
  rebinding) cannot redirect it. TLS still verifies the certificate for the URL's host name,
  which is also the SNI, because the TLS layer above the backend knows only the URL.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from forecourt.logging import get_logger
from forecourt.settings import Environment, load_settings

_log = get_logger("cloud.integrations.destinations")

ALLOW_LOOPBACK_ENV = "FORECOURT_WEBHOOK_ALLOW_LOOPBACK"
HTTPS_PORTS = frozenset({443, 8443})
"""The only ports an ``https`` subscription may name (loopback receivers excepted)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[tuple[Any, Any, Any, Any, tuple[Any, ...]]]]
"""``socket.getaddrinfo``'s shape: ``(host, port)`` to ``(family, type, proto, canonname,
sockaddr)`` entries, the address being ``sockaddr[0]``."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAMED_RANGES: tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...] = (
    ("this_network", (ipaddress.IPv4Network("0.0.0.0/8"),)),
    ("shared", (ipaddress.IPv4Network("100.64.0.0/10"),)),
    (
        "documentation",
        (
            ipaddress.IPv4Network("192.0.2.0/24"),
            ipaddress.IPv4Network("198.51.100.0/24"),
            ipaddress.IPv4Network("203.0.113.0/24"),
            ipaddress.IPv6Network("2001:db8::/32"),
            ipaddress.IPv6Network("3fff::/20"),
        ),
    ),
    (
        "benchmarking",
        (ipaddress.IPv4Network("198.18.0.0/15"), ipaddress.IPv6Network("2001:2::/48")),
    ),
    (
        "protocol_assignments",
        (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv6Network("2001::/23")),
    ),
    ("relay_anycast", (ipaddress.IPv4Network("192.88.99.0/24"),)),
    ("unique_local", (ipaddress.IPv6Network("fc00::/7"),)),
    ("local_nat64", (ipaddress.IPv6Network("64:ff9b:1::/48"),)),
    ("discard", (ipaddress.IPv6Network("100::/64"),)),
)
"""Ranges named explicitly: Python's ``is_global``/``is_private`` miss some of them (multicast
counts as global; 192.0.0.0/24 is only partly private) and a name makes the refusal precise."""


class DestinationError(Exception):
    """A webhook destination the cloud will not connect to; ``reason`` is a short code."""

    def __init__(self, host: str, reason: str, address: str | None = None) -> None:
        super().__init__(
            f"{host} resolves to {address}, a {reason} address" if address else f"{host}: {reason}"
        )
        self.host, self.reason, self.address = host, reason, address


class DestinationNotAllowed(DestinationError):
    """The host is, or resolves to, an address that is not globally routable."""


class DestinationUnresolvable(DestinationError):
    """The host name did not resolve (it may later: DNS gets fixed)."""


def refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why the cloud must not connect to ``address`` (a short code), or ``None`` if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded, allow_loopback=allow_loopback)
    if address.is_loopback:
        return None if allow_loopback else "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    for name, networks in _NAMED_RANGES:
        if any(address in network for network in networks):
            return name
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site_local"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not_global"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Which addresses a webhook may reach, and how host names are resolved (injectable, so a
    test can make a name resolve anywhere without a DNS server)."""

    allow_loopback: bool = False
    resolver: Resolver = field(default=socket.getaddrinfo)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> DestinationPolicy:
        """The policy a process runs with: loopback only if ``FORECOURT_WEBHOOK_ALLOW_LOOPBACK``
        is ``1`` outside production (logged as a warning). A production process that sets it
        keeps loopback refused and logs an error: the setting is for development and tests."""
        source = os.environ if environ is None else environ
        if source.get(ALLOW_LOOPBACK_ENV) != "1":
            return cls()
        if _is_production(environ):
            _log.error("webhook_loopback_refused_in_production", setting=ALLOW_LOOPBACK_ENV)
            return cls()
        _log.warning("webhook_loopback_allowed", setting=ALLOW_LOOPBACK_ENV)
        return cls(allow_loopback=True)

    def vet(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """Every address ``host`` resolves to, in the resolver's order, if all are allowed.

        One refused address refuses the host: a name that mixes public and internal answers is
        not a partner endpoint."""
        literal = _literal(host)
        if literal is not None:
            found: list[IPAddress] = [literal]
        else:
            try:
                answers = self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise DestinationUnresolvable(host, f"does not resolve ({exc})") from exc
            found = []
            for *_ignored, sockaddr in answers:
                parsed = _literal(str(sockaddr[0]))
                if parsed is None:
                    raise DestinationNotAllowed(host, "unparseable", str(sockaddr[0]))
                if parsed not in found:
                    found.append(parsed)
            if not found:
                raise DestinationUnresolvable(host, "resolves to no address")
        for address in found:
            reason = refusal(address, allow_loopback=self.allow_loopback)
            if reason is not None:
                raise DestinationNotAllowed(host, reason, str(address))
        return tuple(found)


def _is_production(environ: Mapping[str, str] | None) -> bool:
    """Whether the process runs as production: from ``environ`` when given (tests), else from
    the process settings (variables and the ``FORECOURT_CONFIG`` file); settings that do not
    load count as production, so a broken configuration never widens the destinations."""
    if environ is not None:
        return environ.get("FORECOURT_ENVIRONMENT", "development") == Environment.PRODUCTION
    try:
        return load_settings().environment is Environment.PRODUCTION
    except ValueError:
        return True


def all_loopback(addresses: Iterable[IPAddress]) -> bool:
    """Whether every address is loopback (possibly IPv4-mapped): a same-host receiver."""
    return all(
        (a.ipv4_mapped or a if isinstance(a, ipaddress.IPv6Address) else a).is_loopback
        for a in addresses
    )


class VettingBackend(httpcore.NetworkBackend):
    """httpcore's network backend that resolves a host once, vets every answer with
    ``policy`` and dials the vetted addresses (in order, until one connects).

    httpcore hands :meth:`connect_tcp` the URL's host and later starts TLS with that host as
    SNI and certificate name, so only the TCP destination changes: it is never resolved twice.
    """

    def __init__(
        self, policy: DestinationPolicy, inner: httpcore.NetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.policy.vet(host, port)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # vet() returns at least one address
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Never used: a webhook URL names a host, not a socket path."""
        raise DestinationNotAllowed(path, "unix_socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class VettingTransport(httpx.HTTPTransport):
    """httpx's HTTP transport over a connection pool whose network backend is a
    :class:`VettingBackend`: same request mapping and exception translation as httpx's own.

    Keep-alive is off, so each delivery opens, and so vets, its own connection; no proxy is
    taken from the environment (a proxy would do the dialling, past the vetting)."""

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False)
        # httpx has no option for the network backend; its pool is replaced by one that has it.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_keepalive_connections=0,
            network_backend=VettingBackend(policy, inner),
        )
