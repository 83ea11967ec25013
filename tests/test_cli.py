from typer.testing import CliRunner

from forecourt.cli import app


def test_help_lists_every_part() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("vin", "demo", "activate", "cloud", "edge", "vehicle", "ledger", "bundle"):
        assert command in result.output


def test_version_is_printed() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("forecourt ")
