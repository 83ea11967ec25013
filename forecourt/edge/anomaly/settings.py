"""Anomaly thresholds from the environment (``FORECOURT_ANOMALY_*``), defaults when unset.

Kept beside the rules rather than in the edge's command line so every way of building the edge
(CLI, demo, tests) gets the same tuning without new options. Durations are seconds or ISO 8601
(``600``, ``PT10M``), times ``HH:MM``, the time zone an IANA name (``Europe/Berlin``), the refusal
codes a JSON list. A bad value stops the edge at start with the variable's name in the error.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated

from pydantic import BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from forecourt.edge.anomaly.model import DEFAULT_REFUSAL_CODES, Thresholds
from forecourt.logging import get_logger

_log = get_logger("edge.anomaly.settings")
_D = Thresholds()


def _seconds(value: object) -> object:
    """A bare number from the environment is seconds (pydantic reads only ISO text otherwise)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


class AnomalySettings(BaseSettings):
    """One field per :class:`Thresholds` field, same name, same default."""

    model_config = SettingsConfigDict(env_prefix="FORECOURT_ANOMALY_", extra="forbid")

    lookback: Duration = _D.lookback
    burst_max_cars: int = _D.burst_max_cars
    burst_window: Duration = _D.burst_window
    refusal_run: int = _D.refusal_run
    refusal_window: Duration = _D.refusal_window
    refusal_codes: frozenset[str] = DEFAULT_REFUSAL_CODES
    opening: time = _D.opening
    closing: time = _D.closing
    timezone: str = _D.timezone
    signin_failures: int = _D.signin_failures
    offline_max_uses: int = _D.offline_max_uses
    offline_window: Duration = _D.offline_window

    def thresholds(self) -> Thresholds:
        return Thresholds(**self.model_dump())


def thresholds_from_environment() -> Thresholds:
    """The thresholds ``FORECOURT_ANOMALY_*`` ask for; :class:`ValueError` names a bad one."""
    try:
        return AnomalySettings().thresholds()
    except (ValidationError, ValueError) as exc:
        _log.error("anomaly_settings_refused", error=str(exc))
        raise ValueError(f"FORECOURT_ANOMALY_* settings refused: {exc}") from exc
