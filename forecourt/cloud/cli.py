"""``forecourt cloud ...``: keys, registry loading, serve, dealer certificates, staff tokens.

A cloud replica is started from files an operator prepared once (see docs/operations.md):

* ``init-keys DIR``: the director and image role keys (``keys.json`` names each by key URI, so a
  role moves to an HSM by editing one line), the central ledger's checkpoint key, and the two
  root metadata files every car pins at the factory (``director-root.json``, ``image-root.json``)
  with the ledger's verifier key (``ledger.vkey``) that edges check receipts with;
* ``rotate-keys DIR``: the offline key-rotation ceremony (new role keys, root vN+1 exported as
  ``director-root.N.json``; see docs/key-rotation.md);
* ``sign-images`` (offline, image targets key) and ``publish-image-targets``: the image
  repository's targets signed away from the cloud and stored for every replica to serve;
* ``seed-demo`` / ``import-vehicles``: load the registry;
* ``serve``: mutual TLS with a certificate from ``forecourt pki issue-cloud`` (or issued at start
  when the issuing CA's password is given).

Passwords come from the environment (``FORECOURT_CLOUD_KEY_PASSWORD``,
``FORECOURT_PKI_CA_PASSWORD``) or a prompt, never from the command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from forecourt.blobs import FileBlobStore
from forecourt.cloud.app import create_app
from forecourt.cloud.auth import Scope, issue_token
from forecourt.cloud.catalog.service import load_catalog
from forecourt.cloud.config import CloudConfig
from forecourt.cloud.crl_files import CrlFile
from forecourt.cloud.db import Database
from forecourt.cloud.dossier.cli import dossier_command
from forecourt.cloud.integrations.cli import deliver_webhooks_command
from forecourt.cloud.keys import (
    OFFLINE_LISTING,
    PASSWORD_ENV,
    REPOSITORIES,
    ROOT_LISTING,
    ROOT_PASSWORD_ENV,
    KeyListingError,
    RootHistoryError,
    RotationRefused,
    init_signing_keys,
    load_offline_image_targets,
    load_root_history,
    load_signing_keys,
    renew_root,
    root_file_name,
    rotate_signing_keys,
    sign_roots,
)
from forecourt.cloud.lifecycle.cli import lifecycle_command
from forecourt.cloud.packages.image_targets import (
    ImageTargetsRefused,
    catalog_targets,
    check_image_targets,
    newest_version,
    publish_image_targets,
    sign_image_targets,
)
from forecourt.cloud.problems import CloudProblem
from forecourt.cloud.registry.dealers import (
    get_dealer,
    record_certificate,
    revoke_certificate,
)
from forecourt.cloud.registry.edge_logs import register_edge_log
from forecourt.cloud.registry.feed import import_rows, parse_feed
from forecourt.cloud.server import TlsFiles, uvicorn_config
from forecourt.cloud.signing import metadata_version_clock
from forecourt.demo.cloud import seed_registry, upload_packages
from forecourt.demo.data import generate_world
from forecourt.demo.fleet import activatable, bought_features
from forecourt.http.workers import WorkersDidNotStart, start_workers
from forecourt.ledger.checkpoint import SoftwareNoteSigner, verifier_for
from forecourt.logging import get_logger
from forecourt.settings import load_settings
from forecourt.store.registry import VehicleRow
from forecourt.trust._sslib import Metadata, Root
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.certificates import load_certificate
from forecourt.trust.cli import ordered_server_names
from forecourt.trust.crl_reload import ROOT_CRL_FILE
from forecourt.trust.errors import TrustError
from forecourt.trust.keys import generate_file_key, load_file_private_key
from forecourt.trust.oem_pki import CA_KEY_REFERENCE, OemPki

app = typer.Typer(no_args_is_help=True)
app.command("dossier")(dossier_command)
app.command("deliver-webhooks")(deliver_webhooks_command)
_log = get_logger("cloud.cli")

ROOT_FILES = {repo: root_file_name(repo, 1) for repo in REPOSITORIES}
"""The repository root metadata ``init-keys`` exports beside ``keys.json`` (pinned by cars);
``rotate-keys`` adds ``director-root.2.json`` ... beside them."""
OFFLINE_DIR = "offline"
"""Beside keys.json after init-keys: the root keys, to be moved off the cloud host."""
LEDGER_KEY_FILE = "ledger-checkpoint.pem"
LEDGER_VKEY_FILE = "ledger.vkey"
CLOUD_TLS_NAME = "tls"

_PKI = typer.Option(..., "--pki", file_okay=False, help="The OEM PKI directory.")
_CA_PASSWORD = typer.Option(
    None,
    "--ca-password",
    envvar="FORECOURT_PKI_CA_PASSWORD",
    help="Password of the issuing CA key (prompted; or FORECOURT_PKI_CA_PASSWORD). Not asked "
    "when the key is in an HSM (ca-key.json in the PKI directory).",
)
_DB = typer.Option(
    None, "--database-url", help="SQLAlchemy URL (default: FORECOURT_DATABASE_URL, else SQLite)."
)
_BLOBS = typer.Option(
    None, "--blob-dir", file_okay=False, help="Package blobs (default: DATA_DIR/cloud-blobs)."
)
_KEYS = typer.Option(
    ..., "--keys", exists=True, dir_okay=False, help="keys.json written by init-keys."
)


def _database_url(url: str | None) -> str:
    return url or load_settings().sqlalchemy_url("cloud")


def _blob_dir(path: Path | None) -> Path:
    return path or load_settings().data_dir / "cloud-blobs"


def _refuse(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` on stderr and return the exit to raise (one line, no traceback)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load_pki(pki: Path, ca_password: str | None) -> OemPki:
    """The PKI's issuing side; a key that does not load or is not ca.pem's exits 2."""
    if ca_password is None and not (pki / CA_KEY_REFERENCE).exists():
        ca_password = typer.prompt("CA password", hide_input=True)
    try:
        return OemPki.load(pki, (ca_password or "").encode())
    except TrustError as exc:
        raise _refuse(f"{exc.code}: {exc}") from exc


def _key_password() -> bytes:
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise _refuse(f"set {PASSWORD_ENV} to the password that encrypts the role keys")
    return password.encode()


def _ledger_signer(keys_dir: Path, password: bytes) -> SoftwareNoteSigner:
    key = load_file_private_key(keys_dir / LEDGER_KEY_FILE, password)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise _refuse(f"{keys_dir / LEDGER_KEY_FILE} is not an Ed25519 key")
    return SoftwareNoteSigner(key)


def _exported_roots(keys_dir: Path) -> dict[str, tuple[Metadata[Root], ...]]:
    """The root history ``init-keys`` and ``rotate-keys`` exported, v1 (what cars pin) first:
    served as is, never re-signed; a history that would not verify in a car is refused."""
    try:
        return load_root_history(keys_dir)
    except RootHistoryError as exc:
        raise _refuse(f"the exported root metadata in {keys_dir} cannot be served: {exc}") from exc


def _root_key_password(directory: Path) -> tuple[bytes, str]:
    """The root keys' own password, and the variable a key URI names for it."""
    password = os.environ.get(ROOT_PASSWORD_ENV)
    if password:
        return password.encode(), ROOT_PASSWORD_ENV
    _log.warning(
        "root_key_password_shared",
        detail=f"{ROOT_PASSWORD_ENV} is not set: the root keys in {directory / OFFLINE_DIR} "
        f"are encrypted with {PASSWORD_ENV}; set it to give them their own",
    )
    return _key_password(), PASSWORD_ENV


@app.command("init-keys")
def init_keys_command(
    directory: Path = typer.Argument(..., file_okay=False, help="Where the role keys go."),
    root_days: int = typer.Option(
        365, "--root-days", min=1, help="Validity of the repository roots cars pin."
    ),
    ledger_origin: str = typer.Option(
        CloudConfig.ledger_origin, "--ledger-origin", help="The central ledger's origin line."
    ),
    offline_image_targets: bool = typer.Option(
        False,
        "--offline-image-targets",
        help="Keep the image repository's targets key offline too (DIRECTORY/offline, "
        "offline-keys.json): serve then signs no image targets; use sign-images.",
    ),
) -> None:
    """Generate the role keys and the ledger key; sign and export the roots cars pin and the
    ledger vkey.

    The online role keys are encrypted with FORECOURT_CLOUD_KEY_PASSWORD; the two root keys go
    to DIRECTORY/offline under FORECOURT_ROOT_KEY_PASSWORD (move that directory off the cloud
    host: serve never reads it). An existing keys.json is never overwritten: the cars in the
    field pin these roots. With --offline-image-targets the image targets key goes there too.
    """
    password = _key_password()
    if (directory / "keys.json").exists():
        raise _refuse(f"{directory / 'keys.json'} exists; keys are never regenerated in place")
    root_password, root_env = _root_key_password(directory)
    offline = directory / OFFLINE_DIR
    listing = init_signing_keys(
        directory,
        password,
        root_directory=offline,
        root_password=root_password,
        root_password_env=root_env,
        offline_image_targets=offline_image_targets,
    )
    generate_file_key(directory / LEDGER_KEY_FILE, "ed25519", password)
    expires = (datetime.now(UTC) + timedelta(days=root_days)).replace(microsecond=0)
    try:
        roots = sign_roots(listing, offline / ROOT_LISTING, expires)
    except TrustError as exc:
        raise _refuse(f"{exc.code}: {exc}") from exc
    for name, root in roots.items():
        (directory / ROOT_FILES[name]).write_bytes(canonical_bytes(root.to_dict()))
    vkey = verifier_for(ledger_origin, _ledger_signer(directory, password)).to_vkey()
    (directory / LEDGER_VKEY_FILE).write_text(vkey + "\n", encoding="utf-8")
    typer.echo(f"keys           {listing}")
    typer.echo(f"root keys      {offline / ROOT_LISTING} (offline: move off this host)")
    if offline_image_targets:
        typer.echo(
            f"image targets  {offline / OFFLINE_LISTING} (offline: sign with cloud sign-images)"
        )
    for name, file in ROOT_FILES.items():
        typer.echo(f"{name + ' root':<14} {directory / file} (pin in cars; expires {expires:%F})")
    typer.echo(f"ledger vkey    {directory / LEDGER_VKEY_FILE}: {vkey}")


def _refuse_rotation(message: str, code: int = 2) -> typer.Exit:
    """Log the refused ceremony (reason only, never a password) and print it."""
    _log.warning("rotate_keys_refused", reason=message)
    return _refuse(message, code)


def _rotation_passwords(root_listing: Path) -> tuple[bytes, bytes, str]:
    """The online keys' password, and the one new root keys are encrypted with (and its
    variable): ``FORECOURT_ROOT_KEY_PASSWORD``, else the online one, as ``init-keys`` does."""
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise _refuse_rotation(
            f"set {PASSWORD_ENV}: the ceremony loads the online keys and encrypts new ones"
        )
    root_password = os.environ.get(ROOT_PASSWORD_ENV)
    if root_password:
        return password.encode(), root_password.encode(), ROOT_PASSWORD_ENV
    _log.warning(
        "root_key_password_shared",
        detail=f"{ROOT_PASSWORD_ENV} is not set: new root keys in {root_listing.parent} "
        f"are encrypted with {PASSWORD_ENV}",
    )
    return password.encode(), password.encode(), PASSWORD_ENV


@app.command("rotate-keys")
def rotate_keys_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    directory: Path = typer.Argument(
        ..., file_okay=False, help="The keys directory init-keys wrote (keys.json, roots)."
    ),
    repository: str = typer.Option(
        ..., "--repository", help="Whose keys rotate: director, image or both."
    ),
    roles: str | None = typer.Option(
        None,
        "--roles",
        help="Comma-separated roles to give new keys: root, timestamp, snapshot, targets, offline.",
    ),
    threshold: int | None = typer.Option(
        None,
        "--threshold",
        help="Signatures each rotated role needs (default: its current threshold).",
    ),
    key_count: int | None = typer.Option(
        None, "--key-count", help="Keys generated per rotated role (default: the threshold)."
    ),
    root_days: int = typer.Option(
        365, "--root-days", "--root-expires", help="Validity of the new roots (days)."
    ),
    root_keys: Path | None = typer.Option(
        None,
        "--root-keys",
        dir_okay=False,
        help="root-keys.json of the offline root keys (default: DIRECTORY/offline/root-keys.json).",
    ),
    offline_targets: bool = typer.Option(
        False,
        "--offline-targets",
        help="With --repository image --roles targets: put the new image targets keys offline "
        "beside the root keys (offline-keys.json), out of keys.json.",
    ),
    hsm_key: list[str] | None = typer.Option(
        None,
        "--hsm-key",
        help="ROLE=pkcs11:token=...;object=...?module-path=...&pin-source=env:VAR: rotate ROLE "
        "onto this existing HSM key instead of a new file key (repeat for several keys).",
    ),
    renew: bool = typer.Option(
        False,
        "--renew-root",
        help="Only renew the roots' expiry: root vN+1 with the same keys, signed by the current "
        "root keys (no --roles).",
    ),
) -> None:
    """Rotate repository keys offline: new keys for the named roles, root vN+1 signed by the
    current root keys (and the new ones if root rotates), exported as REPO-root.N.json.

    Needs FORECOURT_CLOUD_KEY_PASSWORD and the root keys' password (FORECOURT_ROOT_KEY_PASSWORD).
    Old key files and director-root.json / image-root.json (what cars pinned) stay; keys.json is
    replaced last. A refusal (exit 2) changes nothing. Restart the cloud replicas afterwards.
    --hsm-key puts a role on a key already in an HSM (keys.json records the URI); --renew-root
    writes root vN+1 with the same keys and a new expiry (--root-expires DAYS).
    """
    root_listing = root_keys or directory / OFFLINE_DIR / ROOT_LISTING
    repositories = list(REPOSITORIES) if repository == "both" else [repository]
    named = [r.strip() for r in roles.split(",")] if roles else []
    if root_days < 1:
        raise _refuse_rotation(f"--root-days {root_days} is below 1")
    expires = (datetime.now(UTC) + timedelta(days=root_days)).replace(microsecond=0)
    hsm_keys = _hsm_key_options(hsm_key or [])
    if renew:
        given = [
            name
            for name, value in (
                ("--roles", roles),
                ("--hsm-key", hsm_key),
                ("--threshold", threshold),
                ("--key-count", key_count),
                ("--offline-targets", offline_targets),
            )
            if value
        ]
        if given:
            raise _refuse_rotation(f"--renew-root keeps every key: drop {', '.join(given)}")
        _renew_roots(directory, repositories, expires, root_listing)
        return
    if not named and not hsm_keys:
        raise _refuse_rotation(
            "name the roles to rotate (--roles), a role's HSM key (--hsm-key ROLE=URI), "
            "or renew the roots' expiry only (--renew-root)"
        )
    password, root_password, root_env = _rotation_passwords(root_listing)
    try:
        rotated = rotate_signing_keys(
            directory,
            repositories=repositories,
            roles=named,
            expires=expires,
            password=password,
            root_listing=root_listing,
            root_password=root_password,
            root_password_env=root_env,
            threshold=threshold,
            key_count=key_count,
            offline_targets=offline_targets,
            hsm_keys=hsm_keys,
        )
    except RotationRefused as exc:
        raise _refuse_rotation(str(exc)) from exc
    except OSError as exc:
        raise _refuse_rotation(f"writing the new keys failed, nothing changed: {exc}", 1) from exc
    for done in rotated:
        version = done.root.signed.version
        typer.echo(f"{done.repository} root v{version}  {done.root_file} (expires {expires:%F})")
        for path in done.key_files:
            typer.echo(f"  new key      {path}")
        for uri in done.hsm_keys:
            typer.echo(f"  HSM key      {uri}")
    typer.echo("restart every cloud replica to sign with the new keys (docs/key-rotation.md)")


def _hsm_key_options(values: list[str]) -> dict[str, list[str]]:
    """``--hsm-key ROLE=URI`` options as role -> URIs (a role named twice gets two keys)."""
    keys: dict[str, list[str]] = {}
    for value in values:
        role, sep, uri = value.partition("=")
        if not sep or not role.strip().isidentifier() or not uri.strip():
            raise _refuse_rotation(
                "--hsm-key takes ROLE=pkcs11:token=...;object=...?module-path=...&pin-source=..."
            )
        keys.setdefault(role.strip(), []).append(uri.strip())
    return keys


def _renew_roots(
    directory: Path, repositories: list[str], expires: datetime, root_listing: Path
) -> None:
    """``rotate-keys --renew-root``: only the current root keys sign, so no password but the
    ones their URIs name is needed, and no listing changes."""
    try:
        renewed = renew_root(
            directory, repositories=repositories, expires=expires, root_listing=root_listing
        )
    except RotationRefused as exc:
        raise _refuse_rotation(str(exc)) from exc
    except OSError as exc:
        raise _refuse_rotation(
            f"writing the renewed root failed, nothing changed: {exc}", 1
        ) from exc
    for done in renewed:
        version = done.root.signed.version
        typer.echo(
            f"{done.repository} root v{version}  {done.root_file} (same keys, expires {expires:%F})"
        )
    typer.echo("copy the new roots to every cloud replica and restart it (docs/key-rotation.md)")


def _keys_directory(keys: Path) -> Path:
    """The keys directory, given it or its ``keys.json``."""
    return keys if keys.is_dir() else keys.parent


def _refuse_images(message: str, code: int = 2) -> typer.Exit:
    """Log a refused signing or publication of image targets (reason only) and print it."""
    _log.warning("image_targets_refused", reason=message)
    return _refuse(message, code)


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file and a rename: whole or not at all."""
    temp = path.with_name(f".{path.name}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


_IMAGE_KEYS = typer.Option(
    ...,
    "--keys",
    exists=True,
    help="The keys directory init-keys wrote (or its keys.json): the exported image roots.",
)


@app.command("sign-images")
def sign_images_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    keys: Path = _IMAGE_KEYS,
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Signed image targets file."),
    days: int = typer.Option(90, "--days", help="Validity of the signed image targets (days)."),
    offline_keys: Path | None = typer.Option(
        None,
        "--offline-keys",
        file_okay=False,
        help="Directory of offline-keys.json (default: KEYS/offline).",
    ),
    database_url: str | None = _DB,
    version_lead: int = typer.Option(
        24,
        "--version-lead",
        min=0,
        help="Hours the version runs ahead of the clock, so replicas still signing image "
        "targets online until they restart can never issue a higher version.",
    ),
) -> None:
    """Sign the image repository's targets offline: every catalog package on every compatible
    hardware number, signed by the offline image targets key(s) (offline-keys.json).

    Run where the offline keys are, with FORECOURT_ROOT_KEY_PASSWORD; the version is above the
    published one (and the millisecond clock), the threshold is the current image root's.
    Publish the file with cloud publish-image-targets. A refusal (exit 2) writes nothing.
    """
    if days < 1:
        raise _refuse_images(f"--days {days} is below 1")
    directory = _keys_directory(keys)
    image_root = _exported_roots(directory)["image"][-1].signed
    try:
        role = load_offline_image_targets(offline_keys or directory / OFFLINE_DIR, image_root)
    except (KeyListingError, TrustError) as exc:
        raise _refuse_images(f"image targets keys unavailable: {exc}") from exc
    db = Database(_database_url(database_url))
    try:
        with db.sessions() as session:
            catalog = load_catalog(session)
            newest = newest_version(session)
    finally:
        db.dispose()
    targets = catalog_targets(catalog)
    if not targets:
        raise _refuse_images("the catalog holds no packages: nothing to sign")
    now = datetime.now(UTC).replace(microsecond=0)
    # Replicas not yet restarted onto the published targets sign image targets online with the
    # millisecond clock; a car that got one of those would hold a version above an offline file
    # signed at "now" and refuse it as a rollback. Leading the clock keeps the file above them.
    version = max((newest or 0) + 1, metadata_version_clock() + version_lead * 3_600_000)
    data = sign_image_targets(
        targets, role.signers, version=version, expires=now + timedelta(days=days)
    )
    try:
        check_image_targets(data, image_root, now)  # as publication and cars will check it
    except ImageTargetsRefused as exc:
        raise _refuse_images(str(exc)) from exc
    try:
        _write_whole(out, data)
    except OSError as exc:
        raise _refuse_images(f"cannot write {out}: {exc.strerror}", 1) from exc
    _log.info("image_targets_signed", version=version, targets=len(targets), out=str(out))
    typer.echo(
        f"image targets v{version}: {len(targets)} images, {len(role.signers)} signature(s) "
        f"(threshold {role.threshold}), expires {now + timedelta(days=days):%F}"
    )
    typer.echo(f"written to {out}; publish with: forecourt cloud publish-image-targets {out}")


@app.command("publish-image-targets")
def publish_image_targets_command(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Image targets signed by sign-images."
    ),
    keys: Path = _IMAGE_KEYS,
    database_url: str | None = _DB,
) -> None:
    """Publish image targets signed offline: every cloud replica serves the newest published
    version (and signs only the image snapshot and timestamp).

    Refused (exit 2, nothing stored): signatures below the threshold of the current image
    root's targets role, expired metadata, a version not above the published one.
    """
    image_root = _exported_roots(_keys_directory(keys))["image"][-1].signed
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _refuse_images(f"cannot read {file}: {exc.strerror}") from exc
    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            published = publish_image_targets(
                session,
                data,
                image_root,
                now=datetime.now(UTC),
                by=f"cli:{os.environ.get('USER', 'unknown')}",
            )
    except ImageTargetsRefused as exc:
        raise _refuse_images(f"{file}: {exc}") from exc
    except IntegrityError as exc:
        raise _refuse_images(f"{file}: this version was published meanwhile") from exc
    finally:
        db.dispose()
    typer.echo(
        f"published image targets v{published.version}: "
        f"{len(published.metadata.signed.targets)} images, expires {published.expires:%F}"
    )


def _image_targets_notice(url: str, keys: Path) -> None:
    """Migrate, and warn when the image targets are signed online (nothing published) or
    cannot be served at all (nothing published and no image targets key held)."""
    db = Database(url)
    try:
        with db.read() as connection:
            published = newest_version(connection)
    finally:
        db.dispose()
    if published is not None:
        _log.info("image_targets_published", version=published)
        return
    listing = json.loads(keys.read_text())
    if "targets" in (listing.get("image") or {}):
        _log.warning(
            "image_targets_online",
            detail="no image targets are published: the image repository's targets are signed "
            "online by this cloud (docs/key-rotation.md, moving image targets offline)",
        )
    else:
        _log.error(
            "image_targets_missing",
            detail="the image targets key is offline and nothing is published: activations are "
            "refused (image_not_published) until cloud publish-image-targets",
        )


def _server_tls(
    tls_dir: Path, pki: Path, host: str, ca_password: str | None
) -> tuple[TlsFiles, OemPki | None]:
    """The listener's certificate: the one in ``tls_dir`` if present, else issued now."""
    cert, key = tls_dir / f"{CLOUD_TLS_NAME}-cert.pem", tls_dir / f"{CLOUD_TLS_NAME}-key.pem"
    if cert.exists() and key.exists():
        return TlsFiles(cert, key, pki / "root.pem"), None
    if ca_password is None:
        raise _refuse(
            f"no {cert.name} in {tls_dir}: issue one (forecourt pki issue-cloud) or set "
            "FORECOURT_PKI_CA_PASSWORD to issue it at start"
        )
    try:
        authority = OemPki.load(pki, ca_password.encode())
        names = ordered_server_names([host, "localhost"]) or ["localhost"]
        paths = authority.issue_cloud(names).write_pem_bundle(tls_dir, name=CLOUD_TLS_NAME)
    except TrustError as exc:
        raise _refuse(f"{exc.code}: {exc}") from exc
    return TlsFiles(paths.cert, paths.key, paths.ca), authority


@app.command("serve")
def serve_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    pki: Path = _PKI,
    keys: Path = _KEYS,
    tls_dir: Path = typer.Option(
        ...,
        "--tls-dir",
        file_okay=False,
        help="tls-cert.pem and tls-key.pem (pki issue-cloud), else issued at start.",
    ),
    ca_password: str | None = typer.Option(
        None,
        "--ca-password",
        envvar="FORECOURT_PKI_CA_PASSWORD",
        hidden=True,
        help="Only to issue the server certificate at start.",
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8443, "--port"),
    database_url: str | None = _DB,
    blob_dir: Path | None = _BLOBS,
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Worker processes on the port (one per core). Each opens its own database pool "
        "and key sessions; PostgreSQL is needed for more than one.",
    ),
) -> None:
    """Serve the cloud over mutual TLS; dealer certificates must chain to the PKI's root."""
    url = _database_url(database_url)
    if workers > 1 and url.startswith("sqlite"):
        raise _refuse("--workers above 1 needs PostgreSQL: SQLite has one writer at a time")
    tls, _issuer = _server_tls(tls_dir, pki, host, ca_password)
    crl_path = pki / "crl.pem"
    if crl_path.exists():
        tls = dataclasses.replace(tls, crl=crl_path)

    password = _key_password()

    def build() -> uvicorn.Config:
        """The app of one worker: keys, HSM sessions and the database pool opened here."""
        try:
            root = load_certificate((pki / "root.pem").read_bytes())
            issuing = load_certificate((pki / "ca.pem").read_bytes())
            config = CloudConfig(
                database_url=url,
                signing=load_signing_keys(keys, _exported_roots(keys.parent)),
                oem_root=root,
                oem_intermediates=(issuing,),
                crl=CrlFile(crl_path),  # re-read when republished, never rolled back
                root_crl=CrlFile(pki / ROOT_CRL_FILE, roots=(root,)),
                blob_dir=_blob_dir(blob_dir),
                ledger_signer=_ledger_signer(keys.parent, password),
                migrate=workers == 1,
            )
        except (OSError, TrustError) as exc:
            raise _refuse(str(exc)) from exc
        return uvicorn_config(
            create_app(config), tls, host=host, port=port, staff_without_certificate=True
        )

    _log.info("cloud_starting", host=host, port=port, database=url.split(":")[0], workers=workers)
    _image_targets_notice(url, keys)  # migrates once, before any worker connects
    if workers == 1:
        uvicorn.Server(build()).run()
        return
    try:
        pool = start_workers(build, host, port, workers)
    except (OSError, WorkersDidNotStart) as exc:
        raise _refuse(f"the cloud did not start: {exc}", 1) from exc
    typer.echo(f"serving {pool.url()} with {workers} workers")
    raise typer.Exit(pool.supervise())


@app.command("seed-demo")
def seed_demo_command(
    vehicles: int = typer.Option(24, "--vehicles", min=1, help="Vehicles in the demo world."),
    seed: int = typer.Option(7, "--seed", help="Demo data seed (the same seed, the same world)."),
    database_url: str | None = _DB,
    blob_dir: Path | None = _BLOBS,
) -> None:
    """Load the deterministic demo world: dealers, catalog, profiles, vehicles, entitlements,
    package bytes. Prints, per dealer, the cars waiting there and what their customers bought."""
    now = datetime.now(UTC).replace(microsecond=0)
    world = generate_world(seed=seed, vehicles=vehicles, reference_time=now)
    db = Database(_database_url(database_url))
    try:
        with db.sessions() as session:
            held = session.scalar(select(func.count()).select_from(VehicleRow)) or 0
        if held:
            raise _refuse(f"the registry already holds {held} vehicles; seed an empty database", 1)
        seed_registry(db, world, now)
    finally:
        db.dispose()
    packages = upload_packages(FileBlobStore(_blob_dir(blob_dir)), world)
    typer.echo(
        f"seeded {len(world.dealers)} dealers, {len(world.vehicles)} vehicles, "
        f"{len(world.catalog.features)} features, {packages} packages (seed {seed})"
    )
    for dealer in world.dealers:
        for car in activatable(world, dealer.dealer_id, now):
            features = ",".join(bought_features(world, car, now))
            typer.echo(f"at {dealer.dealer_id}: {car.vin.value} {features}")


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
    ca_password: str | None = _CA_PASSWORD,
    database_url: str | None = _DB,
) -> None:
    """Issue a dealer edge certificate, record it in the registry, write the PEM bundle."""
    authority = _load_pki(pki, ca_password)
    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            get_dealer(session, dealer_id)
            issued = authority.issue_dealer(dealer_id, edge_id)
            serial = record_certificate(session, dealer_id, issued.cert)
    except CloudProblem as exc:
        typer.echo(f"{exc.code.value}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    except TrustError as exc:
        raise _refuse(f"{exc.code}: {exc}") from exc
    finally:
        db.dispose()
    paths = issued.write_pem_bundle(out, name="edge", crl=authority.crl)
    typer.echo(f"serial {serial}: {paths.cert}, {paths.key}")


@app.command("revoke-dealer-cert")
def revoke_dealer_cert_command(
    serial: str = typer.Argument(..., help="Certificate serial in hex."),
    reason: str = typer.Option("key_compromise", "--reason"),
    pki: Path = _PKI,
    ca_password: str | None = _CA_PASSWORD,
    database_url: str | None = _DB,
) -> None:
    """Revoke a dealer certificate in the registry and on the next published CRL."""
    number = int(serial, 16)
    authority = _load_pki(pki, ca_password)
    try:
        authority.revoke(number)
        authority.publish_crl()
    except TrustError as exc:
        raise _refuse(f"{exc.code}: {exc}") from exc
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


app.command("lifecycle")(lifecycle_command)
