"""What the anomaly rules read (recent events) and what they say (anomalies), plus their tuning.

Pure data: no database, no clock. The repository fills the event types from the edge's tables;
the rules in :mod:`forecourt.edge.anomaly.rules` turn them into :class:`Anomaly` values.

Time windows, everywhere in this package, are **left-open, right-closed**: a window of length
``W`` that ends at ``t`` holds the events with ``t - W < timestamp <= t``. An event exactly ``W``
before ``t`` is outside, an event at ``t`` is inside. The look-back works the same way from the
evaluation instant ``now``: only events in ``(now - lookback, now]`` are read or counted (an
event stamped after ``now``, from a clock that went backwards, is not counted either).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class AnomalyCode(StrEnum):
    """Stable codes: the status check's name, the metric's label and the log's ``code``."""

    ACTIVATION_BURST = "activation_burst"
    REPEATED_REFUSALS = "repeated_refusals"
    OFF_HOURS = "off_hours"
    SIGNIN_FAILURES = "signin_failures"
    OFFLINE_USE_SPIKE = "offline_use_spike"


class Severity(StrEnum):
    """``warning``: look at it today; ``critical``: act now (the self-check shows ``error``)."""

    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class ActivationEvent:
    """One activation workflow as the rules see it (one row of ``edge_activation_workflows``).

    ``ended_at`` is set once the workflow is terminal (``done``, ``failed``, ``refused``,
    ``cancelled``); ``code`` is its refusal or failure code, None for a success.
    """

    workflow_id: str
    operator_id: str
    operator: str
    vin: str
    started_at: datetime
    state: str
    ended_at: datetime | None = None
    code: str | None = None
    offline: bool = False


@dataclass(frozen=True, slots=True)
class SigninState:
    """An account's sign-in record: the store keeps a consecutive-failure counter, not a history.

    ``consecutive_failures`` counts wrong passwords and TOTP codes (sign-in and step-up) since the
    last success; a successful sign-in resets it. ``locked_until`` is set when it reached the
    lock-out limit.
    """

    operator_id: str
    operator: str
    consecutive_failures: int
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class OfflineUse:
    """One offline activation package taken from the stock (``edge_offline_packages.used_at``)."""

    package_id: str
    vin: str
    used_at: datetime
    operator: str | None = None


@dataclass(frozen=True, slots=True)
class RecentEvents:
    """Everything the rules look at for one evaluation, already limited to the look-back."""

    activations: tuple[ActivationEvent, ...] = ()
    signins: tuple[SigninState, ...] = ()
    offline_uses: tuple[OfflineUse, ...] = ()


#: Refusal codes that count towards ``repeated_refusals``: the cloud or the car said no, or the
#: operator was not allowed. A rejected review is a person deciding, not probing: not counted.
DEFAULT_REFUSAL_CODES = frozenset(
    {
        "cloud_refused",
        "vin_mismatch",
        "car_refused_bundle",
        "authentication_failed",
        "manifest_rejected",
        "permission_denied",
    }
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When each rule fires. Defaults suit one dealer's workshop; every field is tunable.

    * ``lookback`` (24 h): events older than this are not read; an anomaly stays shown until the
      evidence that raised it is older than this (so a night's burst is still seen in the morning).
    * ``activation_burst``: more than ``burst_max_cars`` distinct cars (10) activations started by
      one operator within any window of ``burst_window`` (10 min). Critical.
    * ``repeated_refusals``: ``refusal_run`` (3) refusals with a code in ``refusal_codes``, in a
      row for one operator or one VIN, the first and the last within ``refusal_window`` (15 min).
      Only a successful activation (``done``) breaks a row; other failures (link lost, cancelled)
      neither count nor break it. Warning; critical from ``2 × refusal_run`` in a row.
    * ``off_hours``: an activation started outside ``[opening, closing)`` store local time in
      ``timezone`` (07:00–20:00, UTC unless set). ``opening == closing`` means open around the
      clock (rule off); ``opening > closing`` an opening period across midnight. Warning.
    * ``signin_failures``: an account with at least ``signin_failures`` (3) consecutive failed
      sign-ins or TOTP codes (warning), or locked out (critical). No window: the store keeps
      only the count since the last success.
    * ``offline_use_spike``: more than ``offline_max_uses`` (3) offline packages used in the
      store within any window of ``offline_window`` (1 h). Warning.
    """

    lookback: timedelta = timedelta(hours=24)
    burst_max_cars: int = 10
    burst_window: timedelta = timedelta(minutes=10)
    refusal_run: int = 3
    refusal_window: timedelta = timedelta(minutes=15)
    refusal_codes: frozenset[str] = field(default=DEFAULT_REFUSAL_CODES)
    opening: time = time(7, 0)
    closing: time = time(20, 0)
    timezone: str = "UTC"
    signin_failures: int = 3
    offline_max_uses: int = 3
    offline_window: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        for name in ("burst_max_cars", "offline_max_uses"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("refusal_run", "signin_failures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("lookback", "burst_window", "refusal_window", "offline_window"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.opening.tzinfo is not None or self.closing.tzinfo is not None:
            raise ValueError("opening and closing are local wall-clock times, without a zone")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One active anomaly: what was seen, about whom, and what to do about it.

    ``subject`` names what it is about (``operator:<username>``, ``vin:<VIN>`` or ``store``); the
    pair ``(code, subject)`` is its identity, so it is logged once while it stays active.
    """

    code: AnomalyCode
    severity: Severity
    subject: str
    message: str
    recommendation: str
    count: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.code.value, self.subject)

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "subject": self.subject,
            "message": self.message,
            "recommendation": self.recommendation,
            "count": self.count,
            "first_seen": None if self.first_seen is None else self.first_seen.isoformat(),
            "last_seen": None if self.last_seen is None else self.last_seen.isoformat(),
        }
