"""``forecourt demo`` and ``forecourt demo-data``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from forecourt.demo.data import DemoWorld, generate_world
from forecourt.demo.deployment import DEFAULT_DEALER, DeploymentOptions
from forecourt.demo.fleet import NotEnoughCars
from forecourt.demo.run import run_demo
from forecourt.demo.state import DeploymentStateError
from forecourt.http.serving import ServerDidNotStart


def demo_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    data_dir: Path = typer.Option(
        Path(".forecourt-demo"), "--data-dir", file_okay=False, help="State, reused across runs."
    ),
    cars: int = typer.Option(6, "--cars", min=1, max=500, help="How many simulated cars."),
    fresh: bool = typer.Option(False, "--fresh", help="Start from an empty data directory."),
    activate_all: bool = typer.Option(
        False, "--activate-all", help="Activate every car once at start-up; print each time."
    ),
    exit_after: bool = typer.Option(
        False, "--exit-after", help="Stop once ready (after --activate-all): for scripts and CI."
    ),
    cloud_port: int = typer.Option(8443, "--cloud-port", help="Cloud port on 127.0.0.1 (0: any)."),
    edge_port: int = typer.Option(8080, "--edge-port", help="Console port on 127.0.0.1 (0: any)."),
    address_base: int = typer.Option(
        77, "--address-base", min=1, max=254, help="Cars listen on 127.<base>.0.x:13400."
    ),
    dealer_id: str = typer.Option(DEFAULT_DEALER, "--dealer", help="The demo edge's dealer."),
) -> None:
    """Cloud + edge + simulated cars in one process on SQLite; console on http://127.0.0.1:8080."""
    options = DeploymentOptions(
        data_dir=data_dir,
        cars=cars,
        fresh=fresh,
        dealer_id=dealer_id,
        cloud_port=cloud_port,
        edge_port=edge_port,
        address_base=address_base,
    )
    try:
        code = run_demo(options, activate=activate_all, exit_after=exit_after)
    except (ServerDidNotStart, NotEnoughCars, DeploymentStateError) as exc:
        typer.echo(f"demo not started: {exc}", err=True)
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


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
