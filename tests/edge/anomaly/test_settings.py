"""Thresholds from ``FORECOURT_ANOMALY_*``: defaults when unset, values as documented, bad ones
refused with the variable named."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from structlog.testing import capture_logs

from forecourt.edge.anomaly import Thresholds, thresholds_from_environment


def test_unset_means_the_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOOKBACK", "BURST_MAX_CARS", "TIMEZONE", "OPENING"):
        monkeypatch.delenv(f"FORECOURT_ANOMALY_{name}", raising=False)
    assert thresholds_from_environment() == Thresholds()


def test_environment_values_in_seconds_iso_and_hh_mm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORECOURT_ANOMALY_BURST_WINDOW", "600")
    monkeypatch.setenv("FORECOURT_ANOMALY_LOOKBACK", "PT12H")
    monkeypatch.setenv("FORECOURT_ANOMALY_OPENING", "06:30")
    monkeypatch.setenv("FORECOURT_ANOMALY_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("FORECOURT_ANOMALY_REFUSAL_CODES", '["cloud_refused"]')
    t = thresholds_from_environment()
    assert t.burst_window == timedelta(minutes=10) and t.lookback == timedelta(hours=12)
    assert t.opening == time(6, 30) and t.timezone == "Europe/Berlin"
    assert t.refusal_codes == frozenset({"cloud_refused"})


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("BURST_WINDOW", "ten minutes", "burst_window"),
        ("TIMEZONE", "Mars/Olympus_Mons", "unknown time zone"),
        ("REFUSAL_RUN", "0", "refusal_run must be at least 1"),
    ],
)
def test_a_bad_value_is_refused_and_logged(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(f"FORECOURT_ANOMALY_{name}", value)
    with capture_logs() as logs, pytest.raises(ValueError, match=says):
        thresholds_from_environment()
    assert [e["event"] for e in logs] == ["anomaly_settings_refused"]
