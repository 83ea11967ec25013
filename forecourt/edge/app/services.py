"""What the console needs from the rest of the edge, bundled so ``create_app`` takes no globals.

:class:`EdgeServices` is built once per process by whoever wires the edge (the CLI, the demo, a
test) and handed to :func:`forecourt.edge.app.create_app`. Two small ports live here because
nothing else on the edge offers them yet: :class:`VehicleDirectory` (which cars answer on the dealer
network right now) and the per-feature notices a technician shows before an activation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from forecourt.core import ComplianceProfile
from forecourt.edge.anomaly import (
    AnomalyEventRepository,
    AnomalyMonitor,
    Thresholds,
    load_thresholds,
)
from forecourt.edge.app.checks import Check
from forecourt.edge.cache import CacheFreshness
from forecourt.edge.offline import OfflineStock
from forecourt.edge.operators import OperatorService, ReviewService
from forecourt.edge.operators.clock import Clock, system_clock
from forecourt.edge.outbox import OutboxDispatcher
from forecourt.edge.workflow import ActivationService
from forecourt.ledger.log import TransparencyLog


@dataclass(frozen=True, slots=True)
class DiscoveredCar:
    """A car that answered DoIP vehicle identification (ISO 13400-2 §7.3) on the dealer network."""

    vin: str
    address: str
    model: str = ""


class VehicleDirectory(Protocol):
    """The cars on the dealer network now (UDP 13400 vehicle announcement / identification)."""

    def discovered(self) -> Sequence[DiscoveredCar]: ...


@dataclass(frozen=True, slots=True)
class StaticVehicleDirectory:
    """A fixed list of cars: for tests and for a box whose cars are configured by address."""

    cars: tuple[DiscoveredCar, ...] = ()

    def discovered(self) -> Sequence[DiscoveredCar]:
        return self.cars


@dataclass(frozen=True, slots=True)
class FeatureNotice:
    """What UNECE R156 asks the user to see before an update runs, for one feature.

    ``purpose`` (why), ``changed_functions`` (what changes in the car), ``expected_duration_s``
    and ``unavailable_meanwhile`` (what the driver cannot use while it runs).
    """

    code: str
    name: str
    purpose: str
    changed_functions: tuple[str, ...]
    expected_duration_s: int
    unavailable_meanwhile: tuple[str, ...]
    data_categories: tuple[str, ...] = ()
    affects_type_approval: bool = False


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """How the console is served. ``secure_cookies=None``: Secure exactly when served over TLS."""

    secure_cookies: bool | None = None
    sse_keepalive_s: float = 15.0
    ledger_page_size: int = 50
    title: str = "Forecourt edge console"
    notice_id: str = "privacy-notice"


@dataclass(frozen=True)
class EdgeServices:
    """Everything the web app calls; each member is the colleague-owned service itself."""

    dealer_id: str
    edge_id: str
    profile: ComplianceProfile
    sessions: sessionmaker[Session]
    operators: OperatorService
    reviews: ReviewService
    activations: ActivationService
    ledger: TransparencyLog
    offline: OfflineStock
    vehicles: VehicleDirectory
    features: Sequence[FeatureNotice] = ()
    cache_freshness: Callable[[], CacheFreshness] | None = None
    outbox: OutboxDispatcher | None = None
    clock: Clock = field(default=system_clock)
    host_checks: Sequence[Callable[[], Check]] = ()
    """The box's own probes (cloud reachable, clock skew, certificates, disk), run by the
    self-check after the service checks; see :mod:`forecourt.edge.app.host_checks`."""
    profile_version: int | None = None
    """The cloud's version number of ``profile`` (transparency reports cite it); None: unknown."""
    anomaly_thresholds: Thresholds | None = None
    """When the anomaly rules fire; None: ``FORECOURT_ANOMALY_*``, then the ``[anomaly]`` table of
    the ``FORECOURT_CONFIG`` file, then the documented defaults; a bad value refuses to build
    (:func:`forecourt.edge.anomaly.load_thresholds`)."""
    anomalies: AnomalyMonitor = field(init=False, repr=False, compare=False)
    """Built here, one per services bundle: it remembers which anomalies were already logged."""

    def __post_init__(self) -> None:
        thresholds = self.anomaly_thresholds or load_thresholds()
        repository = AnomalyEventRepository(self.sessions, self.dealer_id)
        # frozen: the monitor is derived from the other fields once, at construction
        object.__setattr__(
            self, "anomalies", AnomalyMonitor(repository.recent, thresholds, self.clock)
        )

    def feature(self, code: str) -> FeatureNotice | None:
        return next((f for f in self.features if f.code == code), None)
