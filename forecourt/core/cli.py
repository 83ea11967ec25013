"""``forecourt vin``: the only core command; it adds I/O (printing) around the pure decoder."""

from __future__ import annotations

import typer


def vin_command(vins: list[str] = typer.Argument(..., help="one or more VINs")) -> None:
    """Decode VINs."""
    raise typer.Exit(code=2)
