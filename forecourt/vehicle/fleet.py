"""Fleet mode: N cars in one process and one event loop, each on its own loopback address.

Linux routes all of 127.0.0.0/8 to ``lo``, so car *i* listens on ``127.<base>.y.z:13400`` and a
tester reaches it exactly as it would reach a car on the workshop network: by address, on the
standard port. Used by load tests, the bench and the demo.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

FLEET_FIRST_HOST = 10  # skip 127.x.0.0-9: 127.0.0.1 and friends stay free


def fleet_addresses(count: int, base_octet: int = 77) -> Iterator[str]:
    """Addresses 127.<base>.y.z for ``count`` cars, never the network or broadcast address."""
    if not 0 < base_octet < 255:
        raise ValueError("base_octet must be 1..254")
    network = ipaddress.IPv4Network(f"127.{base_octet}.0.0/16")
    hosts = network.hosts()
    for _ in range(FLEET_FIRST_HOST - 1):
        next(hosts)
    for _ in range(count):
        yield str(next(hosts))
