"""``forecourt vin``: a table per valid VIN; exit 1 naming VIN, position and reason otherwise."""

from __future__ import annotations

from typer.testing import CliRunner

from forecourt.cli import app


def test_valid_vins_print_a_table_each_and_exit_0() -> None:
    result = CliRunner().invoke(app, ["vin", "1M8GDM9AXKP042788", "wvwzzz1jz3w386752"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "VIN 1M8GDM9AXKP042788" in out and "VIN WVWZZZ1JZ3W386752" in out
    assert "north america / United States" in out
    assert "X: valid, enforced (49 CFR 565)" in out
    assert "Z: invalid (expected 9), not enforced" in out
    assert "1989" in out and "2003" in out
    assert "042788" in out  # serial


def test_invalid_vin_exits_1_naming_it_and_still_prints_the_valid_ones() -> None:
    result = CliRunner().invoke(
        app, ["vin", "1M8GDM9A1KP042788", "1M8GDM9AXKP042788", "ABC", "1M8GDM9AXKP04278O"]
    )
    assert result.exit_code == 1
    assert "VIN 1M8GDM9AXKP042788" in result.stdout
    err = result.stderr
    assert "invalid VIN '1M8GDM9A1KP042788': position 9: check digit is '1', expected 'X'" in err
    assert "invalid VIN 'ABC': length: must be 17 characters, got 3" in err
    assert (
        "invalid VIN '1M8GDM9AXKP04278O': position 17: letter 'O' is not allowed (reads as 1 or 0)"
        in err
    )


def test_no_vin_is_a_usage_error() -> None:
    assert CliRunner().invoke(app, ["vin"]).exit_code == 2
