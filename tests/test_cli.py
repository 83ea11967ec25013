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


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        paths.append(path)
        if hasattr(command, "commands"):
            paths.extend(_command_paths(command, path))
    return paths


def test_every_command_says_what_it_does() -> None:
    import typer.main

    root: Any = typer.main.get_command(app)
    paths = _command_paths(root)
    assert len(paths) > 20
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        command = root
        for name in path:
            command = command.commands[name]
        summary = (command.help or command.short_help or "").strip()
        assert len(summary) > 10, f"forecourt {' '.join(path)} has no help text"
