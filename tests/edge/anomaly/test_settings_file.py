"""Thresholds from the ``[anomaly]`` table of the ``FORECOURT_CONFIG`` file: read as documented,
below the ``FORECOURT_ANOMALY_*`` variables and above the defaults, a bad value refused with the
key and the file named, and the edge's services refusing to start with it."""

from __future__ import annotations

import dataclasses
import os
from datetime import time, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from forecourt.edge.anomaly import AnomalySettingsRefused, Thresholds, load_thresholds
from forecourt.settings import load_settings
from tests.edge.app.world import build_world


@pytest.fixture(autouse=True)
def _no_anomaly_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's effect alone: no variable from the machine running the tests interferes."""
    for name in os.environ:
        if name.startswith("FORECOURT_ANOMALY_") or name == "FORECOURT_CONFIG":
            monkeypatch.delenv(name)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forecourt.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_table_sets_thresholds_and_leaves_the_rest_at_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(
        tmp_path,
        'log_level = "DEBUG"\n'
        "[anomaly]\n"
        "burst_max_cars = 25\n"
        "burst_window = 1200\n"
        'lookback = "PT12H"\n'
        "opening = 06:30:00\n"
        'closing = "21:00"\n'
        'timezone = "Europe/Berlin"\n'
        'refusal_codes = ["cloud_refused", "vin_mismatch"]\n',
    )
    monkeypatch.setenv("FORECOURT_CONFIG", str(path))
    t = load_thresholds()
    assert t.burst_max_cars == 25 and t.burst_window == timedelta(minutes=20)
    assert t.lookback == timedelta(hours=12)
    assert (t.opening, t.closing, t.timezone) == (time(6, 30), time(21, 0), "Europe/Berlin")
    assert t.refusal_codes == frozenset({"cloud_refused", "vin_mismatch"})
    d = Thresholds()
    assert (t.refusal_run, t.offline_max_uses, t.offline_window) == (
        d.refusal_run,
        d.offline_max_uses,
        d.offline_window,
    )
    # the process settings read the same file and accept the table beside their own keys
    assert load_settings().log_level == "DEBUG"


def test_a_variable_wins_over_the_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, "[anomaly]\nburst_max_cars = 25\noffline_max_uses = 7\n")
    monkeypatch.setenv("FORECOURT_ANOMALY_BURST_MAX_CARS", "40")
    t = load_thresholds(path)
    assert t.burst_max_cars == 40  # the variable
    assert t.offline_max_uses == 7  # the file
    assert t.signin_failures == Thresholds().signin_failures  # the default


def test_no_file_no_table_or_a_missing_file_means_the_defaults(tmp_path: Path) -> None:
    assert load_thresholds(_config(tmp_path, 'log_level = "DEBUG"\n')) == Thresholds()
    assert load_thresholds(tmp_path / "absent.toml") == Thresholds()
    assert load_thresholds(environ={}) == Thresholds()


@pytest.mark.parametrize(
    ("table", "key", "says"),
    [
        ("burst_max_cars = -1", "burst_max_cars", "must not be negative"),
        ("offline_window = 0", "offline_window", "must be positive"),
        ('refusal_window = "PT0S"', "refusal_window", "must be positive"),
        ("refusal_run = 0", "refusal_run", "must be at least 1"),
        ("burst_max_car = 12", "burst_max_car", "unknown key"),
        ('burst_window = "ten minutes"', "burst_window", "burst_window"),
        ('timezone = "Mars/Olympus_Mons"', "timezone", "unknown time zone"),
    ],
)
def test_a_bad_value_in_the_file_is_refused_naming_the_key_and_the_file(
    tmp_path: Path, table: str, key: str, says: str
) -> None:
    path = _config(tmp_path, f"[anomaly]\n{table}\n")
    with capture_logs() as logs, pytest.raises(AnomalySettingsRefused) as refused:
        load_thresholds(path)
    message = str(refused.value)
    assert str(path) in message and f"[anomaly] {key}" in message and says in message
    assert (refused.value.key, refused.value.source) == (key, str(path))
    [event] = [e for e in logs if e["event"] == "anomaly_settings_refused"]
    assert event["key"] == key and event["source"] == str(path)


def test_a_bad_value_in_the_file_is_refused_even_while_a_variable_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, "[anomaly]\nburst_max_cars = -3\n")
    monkeypatch.setenv("FORECOURT_ANOMALY_BURST_MAX_CARS", "10")
    with pytest.raises(AnomalySettingsRefused, match="burst_max_cars must not be negative"):
        load_thresholds(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("anomaly = 3\n", "[anomaly] must be a table"),
        ("[anomaly\nburst_max_cars = 3\n", "cannot read the settings file"),
    ],
)
def test_a_file_that_is_not_a_threshold_table_is_refused(
    tmp_path: Path, text: str, says: str
) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(AnomalySettingsRefused) as refused:
        load_thresholds(path)
    assert says in str(refused.value) and str(path) in str(refused.value)


def test_a_bad_variable_is_still_refused_with_the_variable_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, "[anomaly]\nrefusal_run = 4\n")
    monkeypatch.setenv("FORECOURT_ANOMALY_REFUSAL_RUN", "0")
    with pytest.raises(AnomalySettingsRefused) as refused:
        load_thresholds(path)
    assert refused.value.source == "FORECOURT_ANOMALY_REFUSAL_RUN"
    assert "refusal_run must be at least 1" in str(refused.value)


def test_the_edge_refuses_to_start_its_services_with_a_bad_table_and_starts_once_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "etc"
    config.mkdir()
    for world in build_world(tmp_path):
        # every start builds the services bundle anew: here from the world's own parts
        monkeypatch.setenv("FORECOURT_CONFIG", str(_config(config, "[anomaly]\nlookback = 0\n")))
        with pytest.raises(AnomalySettingsRefused, match=r"\[anomaly\] lookback: lookback must be"):
            dataclasses.replace(world.services, anomaly_thresholds=None)
        _config(config, "[anomaly]\nrefusal_run = 5\n")
        rebuilt = dataclasses.replace(world.services, anomaly_thresholds=None)
        assert rebuilt.anomalies.thresholds.refusal_run == 5
