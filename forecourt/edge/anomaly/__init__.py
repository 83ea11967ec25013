"""Anomaly warnings at the edge: intrusion signals read from recent activations and sign-ins.

Rules (:mod:`.rules`) are pure functions of recent events (:mod:`.model`), the thresholds and the
instant they are asked about; :class:`AnomalyEventRepository` reads those events from the edge
database; :class:`AnomalyMonitor` runs the rules for the self-check and the metrics and logs each
newly raised anomaly once. Codes, meanings and tuning: docs/operations.md, "Anomaly warnings".
"""

from forecourt.edge.anomaly.model import (
    DEFAULT_REFUSAL_CODES,
    ActivationEvent,
    Anomaly,
    AnomalyCode,
    OfflineUse,
    RecentEvents,
    Severity,
    SigninState,
    Thresholds,
)
from forecourt.edge.anomaly.monitor import AnomalyMonitor
from forecourt.edge.anomaly.repository import AnomalyEventRepository
from forecourt.edge.anomaly.rules import evaluate
from forecourt.edge.anomaly.settings import (
    AnomalySettings,
    AnomalySettingsRefused,
    load_thresholds,
    thresholds_from_environment,
)

__all__ = [
    "DEFAULT_REFUSAL_CODES",
    "ActivationEvent",
    "Anomaly",
    "AnomalyCode",
    "AnomalyEventRepository",
    "AnomalyMonitor",
    "AnomalySettings",
    "AnomalySettingsRefused",
    "OfflineUse",
    "RecentEvents",
    "Severity",
    "SigninState",
    "Thresholds",
    "evaluate",
    "load_thresholds",
    "thresholds_from_environment",
]
