"""``forecourt cloud ...``: serve, import a factory feed, dealer certificates, staff tokens."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
import uvicorn
from cryptography import x509

from forecourt.cloud.app import create_app
from forecourt.cloud.auth import Scope, issue_token
from forecourt.cloud.config import CloudConfig
from forecourt.cloud.db import Database
from forecourt.cloud.keys import PASSWORD_ENV, init_signing_keys, load_signing_keys
from forecourt.cloud.problems import CloudProblem
from forecourt.cloud.registry.dealers import (
    get_dealer,
    record_certificate,
    revoke_certificate,
)
from forecourt.cloud.registry.edge_logs import register_edge_log
from forecourt.cloud.registry.feed import import_rows, parse_feed
from forecourt.cloud.server import TlsFiles, uvicorn_config
from forecourt.settings import load_settings
from forecourt.trust.certificates import load_crl
from forecourt.trust.oem_pki import OemPki

app = typer.Typer(no_args_is_help=True)

_PKI = typer.Option(..., "--pki", file_okay=False, help="The OEM PKI directory.")
_CA_PASSWORD = typer.Option(
    ...,
    "--ca-password",
    envvar="FORECOURT_PKI_CA_PASSWORD",
    prompt=True,
    hide_input=True,
    help="Password of the issuing CA key.",
)
_DB = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: settings).")


def _database_url(url: str | None) -> str:
    return url or load_settings().sqlalchemy_url("cloud")


@app.command("init-keys")
def init_keys_command(
    directory: Path = typer.Argument(..., file_okay=False, help="Where the role keys go."),
) -> None:
    """Generate the director and image repository role keys (password from the environment)."""
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        typer.echo(f"set {PASSWORD_ENV} to the password that encrypts the keys", err=True)
        raise typer.Exit(2)
    typer.echo(init_signing_keys(directory, password.encode()))


@app.command("serve")
def serve_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    pki: Path = _PKI,
    keys: Path = typer.Option(..., "--keys", exists=True, help="keys.json from init-keys."),
    tls_dir: Path = typer.Option(..., "--tls-dir", help="Server certificate and key directory."),
    ca_password: str = _CA_PASSWORD,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8443, "--port"),
    database_url: str | None = _DB,
) -> None:
    """Serve the cloud over mutual TLS (server certificate issued now from the OEM PKI)."""
    authority = OemPki.load(pki, ca_password.encode())
    server = authority.issue_cloud((host, "localhost") if host != "localhost" else (host,))
    paths = server.write_pem_bundle(tls_dir, name="cloud")
    crl_path = pki / "crl.pem"
    settings = load_settings()

    def current_crl() -> x509.CertificateRevocationList | None:
        return load_crl(crl_path.read_bytes()) if crl_path.exists() else None

    config = CloudConfig(
        database_url=_database_url(database_url),
        signing=load_signing_keys(keys, datetime.now(UTC) + timedelta(days=365)),
        oem_root=authority.root,
        oem_intermediates=(authority.ca,),
        crl=current_crl,
        blob_dir=settings.data_dir / "cloud-blobs",
    )
    uvicorn.Server(
        uvicorn_config(
            create_app(config),
            TlsFiles(paths.cert, paths.key, paths.ca),
            host=host,
            port=port,
            staff_without_certificate=True,
        )
    ).run()


@app.command("import-vehicles")
def import_vehicles_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSON feed."),
    database_url: str | None = _DB,
) -> None:
    """Import a factory feed; prints the report and exits 1 if any row failed."""
    media = "application/json" if file.suffix.lower() == ".json" else "text/csv"
    db = Database(_database_url(database_url))
    try:
        report = import_rows(db.sessions, parse_feed(file.read_bytes(), media))
    except CloudProblem as exc:
        typer.echo(f"{exc.code.value}: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    typer.echo(json.dumps(report.to_json(), indent=2))
    if report.errors:
        raise typer.Exit(1)


@app.command("dealer-cert")
def dealer_cert_command(  # noqa: PLR0917 - Typer options
    dealer_id: str = typer.Argument(..., help="Registered dealer id, e.g. DE-MUC-01."),
    edge_id: str = typer.Argument(..., help="The edge box's name."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Where the PEM bundle goes."),
    pki: Path = _PKI,
    ca_password: str = _CA_PASSWORD,
    database_url: str | None = _DB,
) -> None:
    """Issue a dealer edge certificate, record it in the registry, write the PEM bundle."""
    authority = OemPki.load(pki, ca_password.encode())
    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            get_dealer(session, dealer_id)
            issued = authority.issue_dealer(dealer_id, edge_id)
            serial = record_certificate(session, dealer_id, issued.cert)
    except CloudProblem as exc:
        typer.echo(f"{exc.code.value}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    paths = issued.write_pem_bundle(out, name="edge", crl=authority.crl)
    typer.echo(f"serial {serial}: {paths.cert}, {paths.key}")


@app.command("revoke-dealer-cert")
def revoke_dealer_cert_command(
    serial: str = typer.Argument(..., help="Certificate serial in hex."),
    reason: str = typer.Option("key_compromise", "--reason"),
    pki: Path = _PKI,
    ca_password: str = _CA_PASSWORD,
    database_url: str | None = _DB,
) -> None:
    """Revoke a dealer certificate in the registry and on the next published CRL."""
    number = int(serial, 16)
    authority = OemPki.load(pki, ca_password.encode())
    authority.revoke(number)
    authority.publish_crl()
    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            revoke_certificate(session, number, datetime.now(UTC), reason)
    finally:
        db.dispose()
    typer.echo(f"revoked {serial}; CRL published")


@app.command("token")
def token_command(
    subject: str = typer.Argument(..., help="Who the token is for."),
    scope: list[Scope] = typer.Option(..., "--scope", help="Repeat for each scope."),
    database_url: str | None = _DB,
) -> None:
    """Issue an OEM staff API token; it is printed once and stored only as a hash."""
    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            token = issue_token(
                session, subject, frozenset(s.value for s in scope), datetime.now(UTC)
            )
    finally:
        db.dispose()
    typer.echo(token)


@app.command("register-edge-log")
def register_edge_log_command(
    dealer_id: str = typer.Option(..., "--dealer", help="Registered dealer id."),
    edge_id: str = typer.Option(..., "--edge", help="The edge box's name (its certificate CN)."),
    vkey: Path = typer.Option(
        ..., "--vkey", exists=True, dir_okay=False, help="File with the edge's ledger vkey."
    ),
    database_url: str | None = _DB,
) -> None:
    """Register an edge ledger's verifier key so its checkpoints enter the log of logs."""
    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            registered = register_edge_log(
                session,
                dealer_id,
                edge_id,
                vkey.read_text().strip(),
                by=f"cli:{os.environ.get('USER', 'unknown')}",
                now=datetime.now(UTC),
            )
    except CloudProblem as exc:
        typer.echo(f"{exc.code.value}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    state = "registered" if registered.created else "already registered"
    typer.echo(f"{registered.origin}: {state} for {dealer_id}/{edge_id}")
