"""Runs the rules on demand and remembers which anomalies are already raised.

The self-check and the metrics scrape both call :meth:`AnomalyMonitor.evaluate`; the monitor
logs an anomaly once, when it is first seen (``anomaly_raised``, a warning), and once when it is
gone (``anomaly_cleared``), never on every read. Its memory is the process's: after a restart
the anomalies still active are raised (and logged) again, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from forecourt.edge.anomaly.model import Anomaly, RecentEvents, Thresholds
from forecourt.edge.anomaly.rules import evaluate
from forecourt.logging import get_logger

_log = get_logger("edge.anomaly")

#: Reads the events in the look-back ending at ``now`` (the repository's ``recent``).
EventSource = Callable[[datetime, timedelta], RecentEvents]
#: Told after each evaluation: every active anomaly, then those raised by this evaluation.
Listener = Callable[[Sequence[Anomaly], Sequence[Anomaly]], None]


class AnomalyMonitor:
    def __init__(
        self, source: EventSource, thresholds: Thresholds, clock: Callable[[], datetime]
    ) -> None:
        self.thresholds = thresholds
        self._source = source
        self._clock = clock
        self._active: dict[tuple[str, str], Anomaly] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def evaluate(self) -> list[Anomaly]:
        """The anomalies active now; logs and announces those that are new since the last call."""
        now = self._clock()
        found = evaluate(self._source(now, self.thresholds.lookback), self.thresholds, now)
        current = {a.key: a for a in found}
        with self._lock:
            raised = [a for a in found if a.key not in self._active]
            cleared = [a for key, a in self._active.items() if key not in current]
            self._active = current
            listeners = list(self._listeners)
        for a in raised:
            _log.warning(
                "anomaly_raised",
                code=a.code.value,
                severity=a.severity.value,
                subject=a.subject,
                count=a.count,
                first_seen=a.first_seen,
                last_seen=a.last_seen,
                message=a.message,
            )
        for a in cleared:
            _log.info("anomaly_cleared", code=a.code.value, subject=a.subject)
        for listener in listeners:
            listener(found, raised)
        return found

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every evaluation; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
