"""``forecourt bundle ...`` and ``forecourt pki ...`` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from forecourt.trust.canonical import parse_bounded
from forecourt.trust.errors import BundleError, TrustError
from forecourt.trust.model import ACTIVATION_FIELD, MAX_BUNDLE_BYTES
from forecourt.trust.verifier import CarTrustState, EcuTrustState, verify_bundle

bundle_app = typer.Typer(no_args_is_help=True)
pki_app = typer.Typer(no_args_is_help=True)


def _car_for_offline_check(
    activation: dict[str, Any], director_root: bytes, image_root: bytes
) -> CarTrustState:
    """A car state that accepts this bundle's own freshness: checks signatures and consistency
    against the given roots, not replay (an offline inspector has no car to ask)."""
    freshness = activation.get("freshness", {})
    ecus = tuple(
        EcuTrustState(serial, str(part.get("hardware_id")), "unknown")
        for serial, part in activation.get("ecus", {}).items()
    )
    options = {
        r
        for part in activation.get("ecus", {}).values()
        for f in part.get("features", [])
        for r in f.get("requires", [])
    }
    return CarTrustState(
        vin=str(activation.get("vin")),
        director_root=director_root,
        image_root=image_root,
        ecus=ecus,
        factory_options=frozenset(options),
        issued_nonces=frozenset({str(freshness.get("nonce"))}),
        last_offline_counter=int(freshness.get("counter", 1)) - 1,
        last_activation_counter=int(activation.get("activation_counter", 1)) - 1,
    )


@bundle_app.command("inspect")
def inspect_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Bundle file."),
    director_root: Path | None = typer.Option(
        None, "--root", "--director-root", help="Pinned director root.json to verify against."
    ),
    image_root: Path | None = typer.Option(
        None, "--image-root", help="Pinned image-repository root.json (default: --root)."
    ),
    at: datetime | None = typer.Option(
        None, "--at", help="Trusted time to verify at (UTC; default: now)."
    ),
) -> None:
    """Print a bundle and say whether it verifies against the given root(s)."""
    console = Console()
    data = file.read_bytes()
    try:
        obj = parse_bounded(data, MAX_BUNDLE_BYTES, "bundle")
        targets = obj["director"]["targets"]["signed"]
        activation: dict[str, Any] = targets.get(ACTIVATION_FIELD, {})
    except (TrustError, KeyError, TypeError) as exc:
        console.print(f"[bold red]REFUSED[/] malformed bundle: {exc}")
        raise typer.Exit(2) from exc
    console.print(
        f"[bold]{obj.get('format')}[/]  VIN {activation.get('vin')}  "
        f"{len(data)} bytes  freshness {json.dumps(activation.get('freshness'))}"
    )
    table = Table("ECU serial", "hardware", "images", "features", "sealed secrets")
    images: dict[str, list[str]] = {}
    for path, target in targets.get("targets", {}).items():
        custom = target.get("custom", {})
        images.setdefault(custom.get("ecuIdentifier", "?"), []).append(
            f"{custom.get('image', path)} v{custom.get('version')} rc{custom.get('releaseCounter')}"
        )
    for serial, part in sorted(activation.get("ecus", {}).items()):
        table.add_row(
            serial,
            str(part.get("hardware_id")),
            "\n".join(images.get(serial, [])),
            ", ".join(f["feature"] for f in part.get("features", [])),
            ", ".join(sorted(part.get("secrets", {}))),
        )
    console.print(table)
    console.print(f"compliance {json.dumps(activation.get('compliance'))}")
    console.print(f"consent    {json.dumps(activation.get('consent'))}")
    if director_root is None:
        console.print("[yellow]NOT CHECKED[/] (give --root to verify)")
        return
    car = _car_for_offline_check(
        activation, director_root.read_bytes(), (image_root or director_root).read_bytes()
    )
    try:
        verify_bundle(data, car, (at or datetime.now(UTC)).replace(tzinfo=UTC))
    except BundleError as exc:
        console.print(f"[bold red]REFUSED[/] {exc.code} (NRC 0x{exc.nrc:02X}): {exc}")
        raise typer.Exit(1) from exc
    console.print("[bold green]VERIFIED[/] signatures, thresholds, expiry, image consistency")
