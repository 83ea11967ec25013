from typing import Any

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


def _walk(
    command: Any, ctx: Any, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    """Every command below ``command``, found the way click finds them (lazily loaded ones too)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    if not hasattr(command, "list_commands"):
        return found
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        assert sub is not None, f"forecourt {' '.join((*prefix, name))} cannot be loaded"
        found.append(((*prefix, name), sub))
        found.extend(_walk(sub, ctx, (*prefix, name)))
    return found


def test_every_command_says_what_it_does() -> None:
    import typer.main

    root: Any = typer.main.get_command(app)
    commands = _walk(root, root.make_context("forecourt", ["--help"], resilient_parsing=True))
    assert len(commands) > 20
    for path, command in commands:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        summary = (command.help or command.short_help or "").strip()
        assert len(summary) > 10, f"forecourt {' '.join(path)} has no help text"


def test_a_quick_command_does_not_import_the_servers() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from typer.testing import CliRunner; from forecourt.cli import app; "
        "r = CliRunner().invoke(app, ['vin', '1M8GDM9AXKP042788']); "
        "assert r.exit_code == 0, r.output; "
        "print(','.join(m for m in ('fastapi', 'sqlalchemy', 'doipclient') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
