"""The ``forecourt`` command: one entry point for every part (Typer).

Each domain owns its sub-command group in its own ``cli.py``; this module only mounts them, so a
newcomer finds ``forecourt vehicle ...`` in ``forecourt/vehicle/cli.py``.
"""

from __future__ import annotations

import typer

from forecourt import __version__
from forecourt.cloud.cli import app as cloud_app
from forecourt.core.cli import vin_command
from forecourt.demo.cli import demo_command, demo_data_command
from forecourt.edge.cli import activate_command
from forecourt.edge.cli import app as edge_app
from forecourt.ledger.cli import app as ledger_app
from forecourt.logging import configure_logging
from forecourt.settings import load_settings
from forecourt.trust.cli import bundle_app, pki_app
from forecourt.vehicle.cli import app as vehicle_app

app = typer.Typer(
    name="forecourt",
    help="Forecourt: activate connected cars at the dealership (cloud, edge, vehicle simulator).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
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


app.command(
    "vin", help="Decode VINs (ISO 3779); exit non-zero naming the reason if one is invalid."
)(vin_command)
app.command(
    "demo", help="Run the demo: cloud + edge + simulated cars on SQLite, console on localhost."
)(demo_command)
app.command("demo-data", help="Generate the deterministic demo catalog, dealers and vehicles.")(
    demo_data_command
)
app.command("activate", help="Activate a car (or a reviewed batch) through the edge server.")(
    activate_command
)
app.add_typer(cloud_app, name="cloud", help="The carmaker's platform: serve, import, dealer keys.")
app.add_typer(edge_app, name="edge", help="The dealer's activation server: serve, status.")
app.add_typer(vehicle_app, name="vehicle", help="The vehicle simulator: provision, run, fleet.")
app.add_typer(ledger_app, name="ledger", help="The verifiable ledger: verify proofs and exports.")
app.add_typer(bundle_app, name="bundle", help="Activation bundles: inspect and verify.")
app.add_typer(pki_app, name="pki", help="The OEM PKI: root, intermediate, certificates.")

if __name__ == "__main__":
    app()
