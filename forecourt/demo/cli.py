"""``forecourt demo`` and ``forecourt demo-data``."""

from __future__ import annotations

import typer


def demo_command() -> None:
    """Run the demo."""
    raise typer.Exit(code=2)


def demo_data_command(vehicles: int = typer.Option(20, help="how many vehicles")) -> None:
    """Generate demo data."""
    raise typer.Exit(code=2)
