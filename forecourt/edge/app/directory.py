"""The cars on the dealer network, found by DoIP vehicle identification (ISO 13400-2 §7.3).

:class:`DoipVehicleDirectory` asks each configured address (a car's DoIP entity, UDP 13400) for
its identification and keeps the answers for a few seconds, so a dashboard refreshing every
second does not flood the network. The model shown beside a VIN comes from an optional lookup
(the demo knows its fleet; a store's box shows the VIN alone until it has identified the car).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from forecourt.edge.app.services import DiscoveredCar
from forecourt.edge.link.transport import identify


class DoipVehicleDirectory:
    """:class:`~forecourt.edge.app.services.VehicleDirectory` over UDP vehicle identification."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        models: Mapping[str, str] | None = None,
        timeout: float = 0.3,
        ttl: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._addresses = tuple(addresses)
        self._models = dict(models or {})
        self._timeout = timeout
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[DiscoveredCar, ...]] | None = None

    def discovered(self) -> Sequence[DiscoveredCar]:
        with self._lock:
            now = self._monotonic()
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached[1]
            found = self._scan()
            self._cached = (self._monotonic(), found)
            return found

    def _scan(self) -> tuple[DiscoveredCar, ...]:
        if not self._addresses:
            return ()
        workers = min(32, len(self._addresses))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="doip-id") as pool:
            answers = list(pool.map(self._identify, self._addresses))
        return tuple(car for car in answers if car is not None)

    def _identify(self, address: str) -> DiscoveredCar | None:
        try:
            answered, response = identify((address,), vin=None, timeout=self._timeout)
        except (TimeoutError, OSError):
            return None
        vin = str(response.vin)
        return DiscoveredCar(vin, answered, self._models.get(vin, ""))
