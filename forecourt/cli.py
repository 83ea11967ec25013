"""The ``forecourt`` command: one entry point for every part (Typer).

Each domain owns its sub-commands in its own ``cli.py``; this module only names them, so a
newcomer finds ``forecourt vehicle ...`` in ``forecourt/vehicle/cli.py``.

Sub-commands are imported when they are used, not when the command starts: the cloud, the edge
and the simulator pull in FastAPI, SQLAlchemy and the DoIP stack, and ``forecourt vin`` should
not pay for them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup

from forecourt import __version__
from forecourt.logging import configure_logging
from forecourt.settings import load_settings


@dataclass(frozen=True, slots=True)
class _Entry:
    """Where a sub-command lives: a module attribute that is a Typer app or a command function."""

    module: str
    attribute: str
    help: str


COMMANDS: dict[str, _Entry] = {
    "vin": _Entry(
        "forecourt.core.cli",
        "vin_command",
        "Decode VINs (ISO 3779); exit non-zero naming the reason if one is invalid.",
    ),
    "demo": _Entry(
        "forecourt.demo.cli",
        "demo_command",
        "Run the demo: cloud + edge + simulated cars on SQLite, console on localhost.",
    ),
    "demo-data": _Entry(
        "forecourt.demo.cli",
        "demo_data_command",
        "Generate the deterministic demo catalog, dealers and vehicles.",
    ),
    "activate": _Entry(
        "forecourt.edge.cli",
        "activate_command",
        "Activate a car (or a reviewed batch) through the edge server.",
    ),
    "cloud": _Entry(
        "forecourt.cloud.cli",
        "app",
        "The carmaker's platform: serve, import, dealer certificates, key rotation.",
    ),
    "edge": _Entry(
        "forecourt.edge.cli",
        "app",
        "The dealer's activation server: serve, status, operators, CRL refresh.",
    ),
    "vehicle": _Entry(
        "forecourt.vehicle.cli", "app", "The vehicle simulator: provision, run, fleet."
    ),
    "ledger": _Entry(
        "forecourt.ledger.cli", "app", "The verifiable ledger: export, verify proofs and logs."
    ),
    "bundle": _Entry(
        "forecourt.trust.cli", "bundle_app", "Activation bundles: inspect and verify."
    ),
    "pki": _Entry(
        "forecourt.trust.cli", "pki_app", "The OEM PKI: root, intermediate, certificates."
    ),
}


def _load(name: str, entry: _Entry) -> Any:
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        group.help = group.help or entry.help
        return group
    single = typer.Typer(add_completion=False)
    single.command(name, help=entry.help)(target)
    command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A root group that imports a sub-command's module only when that sub-command is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        return None if entry is None else _load(cmd_name, entry)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List the commands from their registered summaries, without importing them."""
        rows = [(name, entry.help) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="forecourt",
    cls=LazyGroup,
    help="Forecourt: activate connected cars at the dealership (cloud, edge, vehicle simulator).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"forecourt {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Forecourt: activate connected cars at the dealership (cloud, edge, vehicle simulator)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.json_logs)


if __name__ == "__main__":
    app()
