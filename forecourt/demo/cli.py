"""``forecourt demo`` and ``forecourt demo-data``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from forecourt.demo.data import DemoWorld, generate_world


def demo_command() -> None:
    """Run the demo."""
    raise typer.Exit(code=2)


def demo_data_command(
    vehicles: int = typer.Option(20, min=0, help="how many vehicles"),
    seed: int = typer.Option(7, help="random seed; the same seed always gives the same data"),
    json_file: Path | None = typer.Option(
        None, "--json", dir_okay=False, writable=True, help="also write the data as JSON here"
    ),
) -> None:
    """Generate the demo world, print a summary and optionally write it as JSON."""
    world = generate_world(seed=seed, vehicles=vehicles)
    Console().print(_summary(world))
    if json_file is not None:
        text = json.dumps(world.to_json(), sort_keys=True, indent=2, ensure_ascii=False)
        json_file.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {json_file}")


def _summary(world: DemoWorld) -> Table:
    table = Table(title=f"Demo world (seed {world.seed})", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("detail")
    table.add_row("models", str(len(world.models)), ", ".join(m.code for m in world.models))
    table.add_row(
        "features",
        str(len(world.catalog.features)),
        ", ".join(f.code for f in world.catalog.features),
    )
    kinds = Counter(p.package_type.value for p in world.catalog.packages)
    table.add_row(
        "packages",
        str(len(world.catalog.packages)),
        ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
    )
    table.add_row("profiles", str(len(world.profiles)), ", ".join(p.market for p in world.profiles))
    table.add_row("dealers", str(len(world.dealers)), ", ".join(d.dealer_id for d in world.dealers))
    markets = Counter(v.market.value for v in world.vehicles)
    states = Counter(v.state.value for v in world.vehicles)
    table.add_row(
        "vehicles",
        str(len(world.vehicles)),
        ", ".join(f"{k} {n}" for k, n in sorted(markets.items()))
        + " | "
        + ", ".join(f"{k} {n}" for k, n in sorted(states.items())),
    )
    sources = Counter(e.source.value for e in world.entitlements)
    table.add_row(
        "entitlements",
        str(len(world.entitlements)),
        ", ".join(f"{k} {n}" for k, n in sorted(sources.items())),
    )
    return table
