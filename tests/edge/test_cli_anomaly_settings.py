"""``edge serve`` refuses bad anomaly thresholds before anything starts, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecourt.edge.cli import app


def _serve_args(data: Path) -> list[str]:
    return [
        "serve", "--dealer-id", "D-TEST", "--car", "127.0.0.1",
        "--cloud-ledger-vkey", "x", "--data-dir", str(data),
    ]  # fmt: skip


def test_a_bad_anomaly_table_stops_serve_with_exit_2_and_names_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "edge.toml"
    config.write_text("[anomaly]\nburst_window = -5\n")
    monkeypatch.setenv("FORECOURT_CONFIG", str(config))
    data = tmp_path / "data"
    result = CliRunner().invoke(
        app,
        _serve_args(data),
    )
    assert result.exit_code == 2, result.output
    assert "burst_window" in result.output
    assert str(config) in result.output
    assert "Traceback" not in result.output
    assert not data.exists()  # nothing was created


def test_a_bad_anomaly_variable_stops_serve_with_exit_2_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORECOURT_CONFIG", raising=False)
    monkeypatch.setenv("FORECOURT_ANOMALY_BURST_MAX_CARS", "many")
    data = tmp_path / "data"
    result = CliRunner().invoke(
        app,
        _serve_args(data),
    )
    assert result.exit_code == 2, result.output
    assert "FORECOURT_ANOMALY_BURST_MAX_CARS" in result.output
    assert not data.exists()
