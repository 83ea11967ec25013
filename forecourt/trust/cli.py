"""``forecourt bundle ...`` and ``forecourt pki ...`` commands."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from cryptography import x509
from rich.console import Console
from rich.table import Table

from forecourt.trust.canonical import parse_bounded
from forecourt.trust.certificates import (
    CertificatePurpose,
    NameConstraintsPolicy,
    load_certificate,
    load_crl,
)
from forecourt.trust.chain import verify_chain
from forecourt.trust.crl_reload import crl_number
from forecourt.trust.errors import BundleError, CertificateError, TrustError
from forecourt.trust.model import ACTIVATION_FIELD, MAX_BUNDLE_BYTES
from forecourt.trust.oem_pki import OemPki, read_ca_key_reference, sign_root_crl
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


_ROOT_PASSWORD = typer.Option(
    ...,
    "--root-password",
    envvar="FORECOURT_PKI_ROOT_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Encrypts the offline root key.",
)
_CA_PASSWORD = typer.Option(
    None,
    "--ca-password",
    envvar="FORECOURT_PKI_CA_PASSWORD",
    hide_input=True,
    help="Encrypts the issuing CA key (prompted when needed; never asked for a key in an HSM).",
)
_DIR = typer.Argument(..., file_okay=False, help="The PKI directory.")


def _ca_password(given: str | None, *, confirm: bool = False) -> bytes:
    """The file CA key's password: given (option or variable), else prompted."""
    if given is None:
        given = str(typer.prompt("CA password", hide_input=True, confirmation_prompt=confirm))
    return given.encode()


def _load(directory: Path, ca_password: str | None) -> OemPki:
    """The PKI in ``directory``; a CA key held in an HSM (``ca-key.json``) needs no password."""
    try:
        held_in_hsm = read_ca_key_reference(directory) is not None
        password = b"" if held_in_hsm else _ca_password(ca_password)
        return OemPki.load(directory, password)
    except TrustError as exc:
        Console(stderr=True).print(f"[bold red]error[/] {exc.code}: {exc}")
        raise typer.Exit(2) from exc


@pki_app.command("init")
def pki_init(  # noqa: PLR0917 - Typer maps each parameter to an option
    directory: Path = _DIR,
    permit_dns: list[str] = typer.Option(
        ["localhost"], "--permit-dns", help="DNS subtree server certificates may name."
    ),
    permit_ip: list[str] = typer.Option(
        ["127.0.0.0/8", "::1/128"], "--permit-ip", help="IP network server certificates may name."
    ),
    root_password: str = _ROOT_PASSWORD,
    ca_password: str | None = _CA_PASSWORD,
    ca_key: str | None = typer.Option(
        None,
        "--ca-key",
        help="A pkcs11: URI: the issuing CA key already in an HSM (no CA password then).",
    ),
) -> None:
    """Create root CA (key kept in DIR/offline, encrypted), issuing CA and an empty CRL."""
    try:
        in_hsm = ca_key is not None or read_ca_key_reference(directory) is not None
        pki = OemPki.create(
            directory,
            root_password.encode(),
            b"" if in_hsm else _ca_password(ca_password, confirm=True),
            policy=NameConstraintsPolicy(tuple(permit_dns), tuple(permit_ip)),
            ca_key_uri=ca_key,
        )
    except TrustError as exc:
        Console(stderr=True).print(f"[bold red]error[/] {exc.code}: {exc}")
        raise typer.Exit(2) from exc
    console = Console()
    console.print(
        f"root      {pki.root.subject.rfc4514_string()}  serial {pki.root.serial_number:x}"
    )
    console.print(f"issuing   {pki.ca.subject.rfc4514_string()}  serial {pki.ca.serial_number:x}")
    console.print(f"[yellow]move {directory / 'offline'} to offline storage[/]")


@pki_app.command("issue-dealer")
def pki_issue_dealer(
    directory: Path = _DIR,
    dealer: str = typer.Option(..., "--dealer", help="Dealer id (subject UID)."),
    edge: str = typer.Option(..., "--edge", help="Edge id (subject CN)."),
    out: Path | None = typer.Option(
        None, "--out", file_okay=False, help="Where the files go (default: DIR/dealers/D-E)."
    ),
    ca_password: str | None = _CA_PASSWORD,
) -> None:
    """Issue a dealer edge certificate and write tls-cert.pem, tls-key.pem, ca.pem, crl.pem.

    The registry does not learn of it: ``forecourt cloud dealer-cert`` issues and records."""
    pki = _load(directory, ca_password)
    try:
        issued = pki.issue_dealer(dealer, edge)
    except TrustError as exc:
        Console(stderr=True).print(f"[bold red]error[/] {exc.code}: {exc}")
        raise typer.Exit(2) from exc
    target = out or directory / "dealers" / f"{dealer}-{edge}"
    paths = issued.write_pem_bundle(target, crl=pki.crl)
    Console().print(f"serial {issued.cert.serial_number:x}\ncert {paths.cert}\nkey  {paths.key}")


def ordered_server_names(hosts: list[str]) -> list[str] | None:
    """``hosts`` with the DNS names first (the first is the CN); ``None`` if there is none."""
    dns, ips = [], []
    for host in dict.fromkeys(hosts):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            dns.append(host)
        else:
            ips.append(host)
    return [*dns, *ips] if dns else None


@pki_app.command("issue-cloud")
def pki_issue_cloud(
    directory: Path = _DIR,
    host: list[str] = typer.Option(
        ["localhost", "127.0.0.1"], "--host", help="DNS name or IP address (repeat)."
    ),
    out: Path | None = typer.Option(
        None, "--out", file_okay=False, help="Where the files go (default: DIR/cloud)."
    ),
    ca_password: str | None = _CA_PASSWORD,
) -> None:
    """Issue the cloud's TLS server certificate: tls-cert.pem and tls-key.pem for
    ``forecourt cloud serve --tls-dir``.

    At least one DNS name is required, and it becomes the subject CN: a verifier that finds no
    DNS name in the certificate checks the CN against the root's DNS name constraints, and an
    IP address there fails them (OpenSSL: "permitted subtree violation")."""
    names = ordered_server_names(host)
    if names is None:
        Console(stderr=True).print(
            "[bold red]error[/] name at least one DNS name with --host (e.g. --host localhost)"
        )
        raise typer.Exit(2)
    pki = _load(directory, ca_password)
    try:
        issued = pki.issue_cloud(names)
    except TrustError as exc:
        Console(stderr=True).print(f"[bold red]error[/] {exc.code}: {exc}")
        raise typer.Exit(2) from exc
    paths = issued.write_pem_bundle(out or directory / "cloud", crl=pki.crl)
    Console().print(f"serial {issued.cert.serial_number:x}\ncert {paths.cert}\nkey  {paths.key}")


@pki_app.command("revoke")
def pki_revoke(
    directory: Path = _DIR,
    serial: str = typer.Argument(..., help="Certificate serial, hexadecimal."),
    ca_password: str | None = _CA_PASSWORD,
) -> None:
    """Revoke a certificate and publish a new CRL at once."""
    pki = _load(directory, ca_password)
    try:
        pki.revoke(int(serial, 16))
    except ValueError as exc:
        Console(stderr=True).print(f"[bold red]error[/] serial {serial!r} is not hexadecimal")
        raise typer.Exit(2) from exc
    except TrustError as exc:
        Console(stderr=True).print(f"[bold red]error[/] {exc.code}: {exc}")
        raise typer.Exit(2) from exc
    crl = pki.publish_crl()
    Console().print(f"revoked {serial}; CRL lists {len(list(crl))} serial(s)")


@pki_app.command("crl")
def pki_crl(directory: Path = _DIR, ca_password: str | None = _CA_PASSWORD) -> None:
    """Publish a fresh CRL (do so before the last one's nextUpdate)."""
    pki = _load(directory, ca_password)
    crl = pki.publish_crl()
    Console().print(
        f"CRL {directory / 'crl.pem'}: {len(list(crl))} revoked, next update "
        f"{crl.next_update_utc:%Y-%m-%dT%H:%MZ}"
    )


@pki_app.command("root-crl")
def pki_root_crl(
    directory: Path = _DIR,
    revoke_ca: list[str] = typer.Option(
        [], "--revoke-ca", help="Serial (hexadecimal) of an issuing CA to revoke (repeat)."
    ),
    root_password: str = typer.Option(
        ...,
        "--root-password",
        envvar="FORECOURT_PKI_ROOT_PASSWORD",
        prompt=True,
        hide_input=True,
        help="Decrypts the offline root key.",
    ),
) -> None:
    """Offline ceremony: sign DIR/root-crl.pem with the root key, listing revoked issuing CAs.

    Every CA the last root CRL listed stays listed; the cRLNumber rises; nextUpdate is a year
    away. Copy root-crl.pem beside the cloud's crl.pem; the edges and cars take it from there."""
    try:
        serials = [int(s, 16) for s in revoke_ca]
    except ValueError as exc:
        Console(stderr=True).print("[bold red]error[/] --revoke-ca takes hexadecimal serials")
        raise typer.Exit(2) from exc
    try:
        crl = sign_root_crl(directory, root_password.encode(), serials)
    except TrustError as exc:
        Console(stderr=True).print(f"[bold red]error[/] {exc.code}: {exc}")
        raise typer.Exit(2) from exc
    listed = ", ".join(f"{r.serial_number:x}" for r in crl) or "none"
    Console().print(
        f"root CRL {directory / 'root-crl.pem'}: number {crl_number(crl)}, revoked CAs "
        f"{listed}, next update {crl.next_update_utc:%Y-%m-%dT%H:%MZ}"
    )


def _eku_names(cert: x509.Certificate) -> str:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "-"
    return ", ".join(getattr(oid, "_name", oid.dotted_string) for oid in eku)


@pki_app.command("show")
def pki_show(  # noqa: PLR0917 - Typer maps each parameter to an option
    cert_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Certificate (PEM/DER)."
    ),
    root: Path | None = typer.Option(None, "--root", help="Pinned root (PEM) to verify against."),
    chain: Path | None = typer.Option(None, "--chain", help="Issuing CA certificate (PEM)."),
    crl: Path | None = typer.Option(None, "--crl", help="Issuing CA's CRL (PEM)."),
    root_crl: Path | None = typer.Option(None, "--root-crl", help="The root's CRL (PEM)."),
    purpose: CertificatePurpose = typer.Option(CertificatePurpose.DEALER, "--purpose"),
) -> None:
    """Print a certificate and whether it verifies against the root and CRL."""
    console = Console()
    try:
        cert = load_certificate(cert_file.read_bytes())
    except TrustError as exc:
        console.print(f"[bold red]REFUSED[/] {exc.code}: {exc}")
        raise typer.Exit(2) from exc
    table = Table("field", "value", show_header=False)
    table.add_row("subject", cert.subject.rfc4514_string())
    table.add_row("issuer", cert.issuer.rfc4514_string())
    table.add_row("serial", f"{cert.serial_number:x}")
    table.add_row(
        "validity",
        f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%MZ} .. "
        f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%MZ}",
    )
    table.add_row("EKU", _eku_names(cert))
    console.print(table)
    if root is None:
        console.print("[yellow]NOT CHECKED[/] (give --root, --chain and --crl to verify)")
        return
    pinned = load_certificate(root.read_bytes())
    intermediates = [load_certificate(chain.read_bytes())] if chain is not None else []
    revocations = load_crl(crl.read_bytes()) if crl is not None else None
    revoked_cas = load_crl(root_crl.read_bytes()) if root_crl is not None else None
    try:
        verify_chain(
            cert,
            intermediates,
            pinned,
            purpose,
            datetime.now(UTC),
            revocations,
            root_crl=revoked_cas,
        )
    except CertificateError as exc:
        console.print(f"[bold red]REFUSED[/] {exc.code} (NRC 0x{exc.nrc:02X}): {exc}")
        raise typer.Exit(1) from exc
    checked = "root and CRL" if revocations is not None else "root (no CRL given)"
    console.print(f"[bold green]VERIFIED[/] as {purpose} against the {checked}")
