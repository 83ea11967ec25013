"""Prometheus metrics of one console app, in the app's own registry (no process globals).

Activations are counted by how they ended and each step's duration observed once, when the
workflow reaches a terminal state (the durations come from the stored steps, the durable truth).
Login failures are counted without the username: the count is a signal, a name would be a leak.
Anomalies (:mod:`forecourt.edge.anomaly`) are a gauge of those active by code, and a counter of
those raised; both carry the code only, never the operator or the car.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from forecourt.edge.anomaly import Anomaly, AnomalyCode, AnomalyMonitor
from forecourt.edge.workflow import ActivationService, Progress
from forecourt.edge.workflow.states import is_terminal
from forecourt.logging import get_logger

_log = get_logger("edge.app.metrics")
STEP_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900)


class ConsoleMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.activations = Counter(
            "forecourt_edge_activations",
            "Activations that reached a terminal state, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "forecourt_edge_activation_step_seconds",
            "Time to reach each workflow state",
            ["state"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.login_failures = Counter(
            "forecourt_edge_login_failures",
            "Refused console logins and step-ups",
            ["kind"],
            registry=self.registry,
        )
        self.anomalies = Gauge(
            "forecourt_edge_anomalies",
            "Anomalies active at the last evaluation, by code",
            ["code"],
            registry=self.registry,
        )
        self.anomalies_raised = Counter(
            "forecourt_edge_anomalies_raised",
            "Anomalies newly raised (each counted once while it stays active), by code",
            ["code"],
            registry=self.registry,
        )
        for code in AnomalyCode:  # every series exists from the start, at zero
            self.anomalies.labels(code.value).set(0)
            self.anomalies_raised.labels(code.value)
        self._monitor: AnomalyMonitor | None = None
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def watch(self, activations: ActivationService) -> Callable[[], None]:
        """Count every workflow of ``activations`` once when it ends; returns unsubscribe."""

        def on_progress(progress: Progress) -> None:
            if not is_terminal(progress.state):
                return
            with self._lock:
                if progress.workflow_id in self._seen:
                    return
                self._seen.add(progress.workflow_id)
            self.activations.labels(progress.state.value).inc()
            try:
                timings = activations.progress(progress.workflow_id).timings_ms
            except Exception:  # metrics never break an activation
                _log.exception("metrics_progress_failed", workflow_id=progress.workflow_id)
                return
            for state, ms in timings.items():
                self.step_seconds.labels(state).observe(ms / 1000)

        return activations.subscribe(on_progress)

    def watch_anomalies(self, monitor: AnomalyMonitor) -> Callable[[], None]:
        """Keep the anomaly metrics in step with ``monitor``'s evaluations; returns unsubscribe."""

        def on_evaluation(active: Sequence[Anomaly], raised: Sequence[Anomaly]) -> None:
            by_code = Tally(a.code.value for a in active)
            for code in AnomalyCode:
                self.anomalies.labels(code.value).set(by_code.get(code.value, 0))
            for a in raised:
                self.anomalies_raised.labels(a.code.value).inc()

        self._monitor = monitor
        return monitor.subscribe(on_evaluation)

    def refresh_anomalies(self) -> None:
        """Evaluate the watched monitor so a scrape sees now, not the last status read.

        Blocking (it reads the database): call it from a worker thread. A failed evaluation is
        logged and leaves the last values; the scrape still answers.
        """
        if self._monitor is None:
            return
        try:
            self._monitor.evaluate()
        except Exception:  # metrics never break on a failed scan; the self-check reports it
            _log.exception("metrics_anomaly_evaluation_failed")

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
