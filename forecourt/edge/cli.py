"""``forecourt edge ...`` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def activate_command(vin: str = typer.Argument(..., help="the car's VIN")) -> None:
    """Activate a car through the edge server."""
    raise typer.Exit(code=2)
