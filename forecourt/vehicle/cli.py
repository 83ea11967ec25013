"""``forecourt vehicle ...``: provision cars at the factory, run one car, or run a fleet."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import sys
from pathlib import Path

import typer

from forecourt.core import LifecycleState
from forecourt.demo.data import ecu_private_keys, generate_world
from forecourt.logging import get_logger
from forecourt.settings import load_settings
from forecourt.trust.errors import PkiError
from forecourt.trust.oem_pki import OemPki
from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.doip.entity import DoipEntity, EntityConfig
from forecourt.vehicle.factory import AnchorFileError, RepositoryRoots, provision_cars
from forecourt.vehicle.faults import FaultPlan, process_exit_hook
from forecourt.vehicle.fleet import fleet_addresses, start_fleet
from forecourt.vehicle.provision import spec_from_vehicle
from forecourt.vehicle.storage import CarStore, StateStoreError
from forecourt.vehicle.trust_adapter import trust_services

app = typer.Typer(no_args_is_help=True)
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_log = get_logger("vehicle.cli")

OEM_SECRET_FILE = "oem-seedkey.secret"  # noqa: S105 - a file name, not a secret
CA_PASSWORD_ENV = "FORECOURT_PKI_CA_PASSWORD"  # noqa: S105 - a variable name, not a secret
"""The issuing CA's password, the same variable ``forecourt pki`` and ``forecourt cloud`` read."""
LEGACY_CA_PASSWORD_ENV = "FORECOURT_OEM_CA_PASSWORD"  # noqa: S105 - still honoured


def _cars_dir(directory: Path | None) -> Path:
    return directory or load_settings().data_dir / "cars"


def _oem_secret(path: Path | None, cars: Path) -> bytes:
    """The OEM seed/key secret; in development one is created beside the cars (mode 0600)."""
    target = path or cars / OEM_SECRET_FILE
    if not target.exists() and path is None:
        cars.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
        finally:
            os.close(fd)
    return target.read_bytes()


def _load_pki(directory: Path | None, password_file: Path | None) -> OemPki | None:
    """The OEM PKI's issuing side; the CA password from a file or the environment."""
    if directory is None:
        return None
    if password_file is not None:
        password = password_file.read_bytes().strip()
    else:
        password = (
            os.environ.get(CA_PASSWORD_ENV) or os.environ.get(LEGACY_CA_PASSWORD_ENV, "")
        ).encode()
    if not password:
        typer.echo(f"--oem-pki needs --ca-password-file or {CA_PASSWORD_ENV}", err=True)
        raise typer.Exit(2)
    try:
        return OemPki.load(directory, password)
    except PkiError as exc:
        typer.echo(f"OEM PKI: {exc}", err=True)
        raise typer.Exit(2) from exc


def _roots(director: Path | None, image: Path | None) -> RepositoryRoots | None:
    if director is None and image is None:
        return None
    if director is None or image is None:
        typer.echo("--director-root and --image-root go together", err=True)
        raise typer.Exit(2)
    try:
        return RepositoryRoots.from_files(director, image)
    except AnchorFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command("provision")
def provision_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    vin: list[str] = typer.Option([], "--vin", help="VIN from the demo data; repeat for several."),
    all_demo: bool = typer.Option(False, "--all-demo", help="Provision every demo car."),
    seed: int = typer.Option(7, help="Demo data seed."),
    vehicles: int = typer.Option(20, help="Number of demo vehicles."),
    directory: Path | None = typer.Option(None, "--dir", help="Cars directory."),
    oem_secret_file: Path | None = typer.Option(None, help="OEM seed/key secret file."),
    oem_pki: Path | None = typer.Option(None, help="OEM PKI directory: issues ECU certificates."),
    ca_password_file: Path | None = typer.Option(None, help="Issuing CA key password file."),
    director_root: Path | None = typer.Option(None, help="Director root metadata to pin."),
    image_root: Path | None = typer.Option(None, help="Image repository root metadata to pin."),
) -> None:
    """Create cars' ECU keys, seed/key secrets and certificates; pin the OEM and Uptane roots."""
    cars_dir = _cars_dir(directory)
    world = generate_world(seed=seed, vehicles=vehicles)
    known = {v.vin.value: v for v in world.vehicles}
    chosen = list(known) if all_demo else vin
    unknown = [v for v in chosen if v not in known]
    if unknown or not chosen:
        typer.echo(f"not in the demo data: {', '.join(unknown) or '(no --vin given)'}", err=True)
        raise typer.Exit(2)
    pki = _load_pki(oem_pki, ca_password_file)
    roots = _roots(director_root, image_root)
    oem_secret = _oem_secret(oem_secret_file, cars_dir)
    keys = {
        v: {e.logical_address: ecu_private_keys(seed, v, e.role) for e in known[v].ecus}
        for v in chosen
    }
    done = provision_cars(
        cars_dir,
        [spec_from_vehicle(known[v]) for v in chosen],
        oem_secret=oem_secret,
        pki=pki,
        roots=roots,
        ecu_keys=keys,
    )
    for car in done:
        if car.store is None:
            typer.echo(f"{car.vin}: already provisioned")
            continue
        trust = ", ".join(
            what
            for what, present in (("ECU certificates", car.certified), ("roots", car.roots_pinned))
            if present
        )
        typer.echo(
            f"{car.vin}: provisioned ({len(known[car.vin].ecus)} ECUs; {trust or 'no anchors'})"
        )


def _faults(
    *,
    drop_after_bytes: int | None,
    drop_after_blocks: int | None,
    fail_flash_ecu: str | None,
    power_loss_at: str | None,
    link_rate: int | None,
    refuse_routing: bool,
) -> FaultPlan:
    return FaultPlan(
        drop_after_bytes=drop_after_bytes,
        drop_after_blocks=drop_after_blocks,
        fail_flash_ecu=int(fail_flash_ecu, 16) if fail_flash_ecu else None,
        power_loss_at_step=power_loss_at,
        link_bytes_per_second=link_rate,
        refuse_routing_activation=refuse_routing,
    )


@app.command("run")
def run_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    vin: str = typer.Option(..., help="A provisioned car."),
    address: str = typer.Option("127.0.0.2", help="Loopback address to listen on (port 13400)."),
    directory: Path | None = typer.Option(None, "--dir", help="Cars directory."),
    drop_after_bytes: int | None = typer.Option(None, help="Drop the link after N bytes."),
    drop_after_blocks: int | None = typer.Option(None, help="Drop after N TransferData blocks."),
    fail_flash_ecu: str | None = typer.Option(None, help="Fail flashing this ECU (hex)."),
    power_loss_at: str | None = typer.Option(
        None, help="Exit the process at this apply step (verify, stage:1002, commit, rename)."
    ),
    link_rate: int | None = typer.Option(None, help="Cap the link at N bytes/s."),
    refuse_routing: bool = typer.Option(False, help="Refuse every routing activation."),
) -> None:
    """Run one car: DoIP entity on ADDRESS:13400 with its ECUs behind the gateway."""
    faults = _faults(
        drop_after_bytes=drop_after_bytes,
        drop_after_blocks=drop_after_blocks,
        fail_flash_ecu=fail_flash_ecu,
        power_loss_at=power_loss_at,
        link_rate=link_rate,
        refuse_routing=refuse_routing,
    )
    store = CarStore(_cars_dir(directory) / vin)
    trust = trust_services(load_settings().data_dir)
    services = CarServices(
        verifier=trust.verifier,
        authenticator=trust.authenticator,
        faults=faults,
        apply_hook=process_exit_hook(faults),
    )
    try:
        car = Car(store, services)
    except StateStoreError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc

    async def serve() -> None:
        entity = DoipEntity(car, EntityConfig(address))
        await entity.start()
        typer.echo(f"{vin} listening on {address}:13400 (Ctrl-C to stop)")
        await entity.announce()
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def _fleet_addresses(count: int, base: str | None, base_octet: int) -> list[str]:
    """``count`` consecutive loopback addresses from ``base`` (or 127.<base_octet>.0.x)."""
    if base is None:
        return list(fleet_addresses(count, base_octet))
    try:
        first = ipaddress.IPv4Address(base)
    except ValueError as exc:
        typer.echo(f"--base {base!r} is not an IPv4 address", err=True)
        raise typer.Exit(2) from exc
    if first not in LOOPBACK or int(first) + count - 1 >= int(LOOPBACK.broadcast_address):
        typer.echo(f"--base {base}: {count} cars do not fit in 127.0.0.0/8", err=True)
        raise typer.Exit(2)
    return [str(first + i) for i in range(count)]


@app.command("fleet")
def fleet_command(  # noqa: PLR0917 - Typer maps each option to a parameter
    count: int | None = typer.Option(
        None, help="Number of cars (default: every car chosen; without --dealer, 10)."
    ),
    dealer: str | None = typer.Option(
        None, "--dealer", help="Run the cars waiting at this dealer (seed-demo lists them)."
    ),
    vehicles: int | None = typer.Option(
        None, "--vehicles", help="Size of the demo world (as given to cloud seed-demo)."
    ),
    base: str | None = typer.Option(
        None, "--base", help="First car's address, e.g. 127.61.4.10; the next ones follow."
    ),
    base_octet: int = typer.Option(77, help="Without --base: cars listen on 127.<base>.0.x."),
    seed: int = typer.Option(7, help="Demo data seed (cars are provisioned on first use)."),
    directory: Path | None = typer.Option(None, "--dir", help="Cars directory."),
    oem_pki: Path | None = typer.Option(None, help="OEM PKI directory (first-use provisioning)."),
    ca_password_file: Path | None = typer.Option(None, help="Issuing CA key password file."),
    director_root: Path | None = typer.Option(None, help="Director root metadata to pin."),
    image_root: Path | None = typer.Option(None, help="Image repository root metadata to pin."),
) -> None:
    """Run cars in one process, each a DoIP entity on its own loopback address (port 13400).

    Prints one ``VIN ADDRESS`` line per car, then ``fleet ready``."""
    cars_dir = _cars_dir(directory)
    world = generate_world(seed=seed, vehicles=vehicles or count or 10)
    chosen = [
        v
        for v in world.vehicles
        if dealer is None or (v.dealer_id == dealer and v.state is LifecycleState.AT_DEALER)
    ][:count]
    if not chosen:
        typer.echo(f"no car of the demo world waits at {dealer}", err=True)
        raise typer.Exit(2)
    oem_secret = _oem_secret(None, cars_dir)
    trust = trust_services(load_settings().data_dir)
    provision_cars(
        cars_dir,
        [spec_from_vehicle(v) for v in chosen],
        oem_secret=oem_secret,
        pki=_load_pki(oem_pki, ca_password_file),
        roots=_roots(director_root, image_root),
        ecu_keys={
            v.vin.value: {
                e.logical_address: ecu_private_keys(seed, v.vin.value, e.role) for e in v.ecus
            }
            for v in chosen
        },
    )
    cars = [
        Car(
            CarStore(cars_dir / v.vin.value),
            CarServices(verifier=trust.verifier, authenticator=trust.authenticator),
        )
        for v in chosen
    ]
    addresses = _fleet_addresses(len(cars), base, base_octet)

    async def serve() -> None:
        members = await start_fleet(cars, addresses)
        for member in members:
            typer.echo(f"{member.vin} {member.address}")
        typer.echo(f"fleet ready: {len(members)} cars", nl=True)
        sys.stdout.flush()
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
