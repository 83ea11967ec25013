"""``forecourt edge serve|status|refresh-crl`` and ``forecourt activate``: the edge from a shell.

The commands talk to a running edge through its console API (``/api/v1``), signed in as an
operator with password + TOTP, so a command line passes exactly the session, CSRF and permission
checks a browser does. Where the edge is:

* ``--edge URL``: any edge; name the operator with ``--username`` (password and code prompted
  unless ``--password``/``--totp`` are given);
* ``--local DATA_DIR``: the edge whose data lives there (``forecourt demo``'s ``.forecourt-demo``
  or ``forecourt edge serve --data-dir``); its ``console.json`` gives the URL and, in a demo, its
  generated operators sign in without typing (the session is kept in ``cli-session.json``, 0600).

Exit codes of ``activate``: 0 done (or, with ``--batch``, review requested), 1 failed or
cancelled, 3 refused (a rule said no; the codes and the reasons are printed), 4 waiting for a
second operator's review, 5 the edge could not be reached.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.anomaly import AnomalySettingsRefused, load_thresholds
from forecourt.edge.app import ConsoleSettings, create_app
from forecourt.edge.app.assembly import (
    ProfileUnavailable,
    console_services,
    fetch_versioned_dealer_profile,
)
from forecourt.edge.app.client import (
    SESSION_FILE,
    ConsoleApiError,
    ConsoleClient,
    EndpointNotFound,
    LocalEndpoint,
    OperatorLogin,
    SessionCache,
    demo_operators,
    edge_dir_of,
)
from forecourt.edge.app.directory import DoipVehicleDirectory
from forecourt.edge.app.transport import (
    InsecureBindRefused,
    TlsMaterialMissing,
    console_transport,
)
from forecourt.edge.audit import EdgeAudit
from forecourt.edge.cloud_client import CloudUnreachable, HttpCloudClient, MutualTls
from forecourt.edge.crl import CrlOutcome, CrlRefresher
from forecourt.edge.operators import (
    AlreadyBootstrapped,
    NewOperator,
    OperatorError,
    OperatorService,
    Role,
    bootstrap_first_admin,
)
from forecourt.edge.operators.repository import OperatorRepository
from forecourt.edge.operators.sealing import (
    TOTP_KEY_ATTRIBUTE,
    TOTP_KEY_FILE,
    TotpKey,
    TotpKeyRotationError,
    rotate_totp_key,
)
from forecourt.edge.operators.totp import TotpEnrolment
from forecourt.edge.wiring import (
    EdgeSettings,
    _ledger_signer,
    dealer_crl_path,
    issuing_ca,
    ledger_verifier,
    root_crl_refresher,
    start_edge,
)
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.repository import MerkleLogStore
from forecourt.logging import get_logger
from forecourt.settings import load_settings
from forecourt.store.engine import EDGE_BRANCHES, create_engine_for, migrate, session_factory

app = typer.Typer(no_args_is_help=True)
_log = get_logger("edge.cli")

EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_REVIEW, EXIT_UNREACHABLE = 0, 1, 3, 4, 5
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_CODES = re.compile(r"\(\d{3}: ([a-z_, ]+)\)")

_EDGE = typer.Option(None, "--edge", help="The edge console's URL, e.g. http://127.0.0.1:8080.")
_LOCAL = typer.Option(
    None, "--local", file_okay=False, help="The data directory of a running edge or demo."
)
_USER = typer.Option(None, "--username", help="Operator (default in a demo: tech / senior).")
_PASSWORD = typer.Option(
    None,
    "--password",
    envvar="FORECOURT_OPERATOR_PASSWORD",
    show_envvar=True,
    help="Password (prompted when missing; prefer the variable or the prompt to the option).",
)
_TOTP = typer.Option(None, "--totp", help="Authenticator code (prompted when missing).")
_CA = typer.Option(
    None, "--ca", dir_okay=False, help="CA of the console's HTTPS certificate (https:// --edge)."
)


class CliProblem(Exception):
    """A command-line input or set-up problem, shown as one line and exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- where the edge is and who signs in ----------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """Where the edge is and who signs in, as given on the command line."""

    edge: str | None
    local: Path | None
    username: str | None
    password: str | None
    totp: str | None
    ca: Path | None = None


def _resolve(where: _Where, default_user: str) -> tuple[str, OperatorLogin, SessionCache]:
    """The console URL, the login and the session cache (``where.ca`` is used by the client)."""
    edge, local, username, password, totp = (
        where.edge, where.local, where.username, where.password, where.totp
    )  # fmt: skip
    if (edge is None) == (local is None):
        raise CliProblem("say where the edge is: --edge URL or --local DATA_DIR")
    known: dict[str, OperatorLogin] = {}
    cache = SessionCache(None)
    if local is not None:
        try:
            url = LocalEndpoint.read(local).url
        except EndpointNotFound as exc:
            raise CliProblem(str(exc), EXIT_UNREACHABLE) from exc
        known = demo_operators(local)
        cache = SessionCache(edge_dir_of(local) / SESSION_FILE)
    else:
        assert edge is not None
        url = edge
    name = username or (default_user if default_user in known else None)
    if name is None:
        name = typer.prompt("Username")
    if name in known and password is None and totp is None:
        return url, known[name], cache
    if password is None:
        password = typer.prompt("Password", hide_input=True)
    if totp is None:
        totp = typer.prompt("Authenticator code")
    return url, OperatorLogin(name, password, None, totp), cache


@contextmanager
def _signed_in(
    url: str, login: OperatorLogin, cache: SessionCache, console: Console, ca: Path | None = None
) -> Iterator[ConsoleClient]:
    client = ConsoleClient(url, cache=cache, ca=ca)
    try:
        try:
            operator = client.sign_in(login)
        except ConsoleApiError as exc:
            raise _api_problem(exc) from exc
        console.print(
            f"[dim]signed in to {url} as {operator['username']} ({operator['role']}, "
            f"{operator['dealer_id']})[/dim]"
        )
        yield client
    finally:
        client.close()


def _api_problem(exc: ConsoleApiError) -> CliProblem:
    if exc.status == 0:
        return CliProblem(f"edge unreachable: {exc.detail}", EXIT_UNREACHABLE)
    return CliProblem(f"refused by the edge: {exc.code}: {exc.detail or exc.title}", EXIT_REFUSED)


def _run(console: Console, body: Any) -> None:
    """Run ``body``; a :class:`CliProblem` becomes its message on stderr and its exit code."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    try:
        body()
    except CliProblem as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None


# -- activate ------------------------------------------------------------------------------------


def _features(value: str | None) -> list[str]:
    return sorted({f.strip() for f in (value or "").split(",") if f.strip()})


def _demo_features(local: Path | None, vin: str) -> list[str]:
    """In a demo, the features the customer bought (listed in the demo's ``fleet.json``)."""
    if local is None:
        return []
    path = edge_dir_of(local).parent / "fleet.json"
    if not path.exists():
        return []
    cars = json.loads(path.read_text(encoding="utf-8")).get("cars", [])
    return next((list(c["features"]) for c in cars if c.get("vin") == vin), [])


def read_vins(path: Path) -> list[str]:
    """VINs from a CSV (a ``vin`` column, or the first column) or JSON (a list, or ``vins``)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        doc = json.loads(text)
        items = doc.get("vins", []) if isinstance(doc, dict) else doc
        vins = [str(v["vin"] if isinstance(v, dict) else v).strip().upper() for v in items]
    else:
        rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip()]
        header = [c.strip().lower() for c in rows[0]] if rows else []
        column = header.index("vin") if "vin" in header else 0
        start = 1 if "vin" in header else 0
        vins = [r[column].strip().upper() for r in rows[start:] if len(r) > column]
    bad = [v for v in vins if not _VIN.fullmatch(v)]
    if bad:
        raise CliProblem(f"{path}: not VINs: {', '.join(bad[:5])}")
    if len(set(vins)) < 2:
        raise CliProblem(f"{path}: a batch needs at least two different VINs")
    return list(dict.fromkeys(vins))


class ActivationView:
    """Rich progress for one car: a bar over the workflow's steps and one for the bytes sent."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[label]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._steps: dict[str, TaskID] = {}
        self._bytes: dict[str, TaskID] = {}
        self._printed: dict[str, set[str]] = {}

    def __enter__(self) -> ActivationView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, doc: dict[str, Any]) -> None:
        wf = str(doc["workflow_id"])
        steps = doc["steps"]
        if wf not in self._steps:
            self._steps[wf] = self.progress.add_task(
                f"{doc['vin']} steps", total=len(steps), label="", start=True
            )
            self._bytes[wf] = self.progress.add_task(
                f"{doc['vin']} transfer", total=None, label="", start=True
            )
            self._printed[wf] = set()
        done = [s for s in steps if s["status"] == "done"]
        self.progress.update(self._steps[wf], completed=len(done), label=doc["label"])
        total, sent = int(doc.get("bytes_total") or 0), int(doc.get("bytes_done") or 0)
        self.progress.update(
            self._bytes[wf],
            total=total or None,
            completed=sent,
            label=f"{sent / 1e6:.2f}/{total / 1e6:.2f} MB" if total else "",
        )
        for step in done:
            if step["state"] not in self._printed[wf]:
                self._printed[wf].add(step["state"])
                ms = "" if step.get("ms") is None else f" {step['ms']} ms"
                self.progress.console.print(f"  {doc['vin']}  ✓ {step['label']}{ms}")


def _outcome(console: Console, doc: dict[str, Any]) -> int:
    state = str(doc["state"])
    vin = doc["vin"]
    if state == "done":
        total = sum(int(s.get("ms") or 0) for s in doc["steps"])
        console.print(f"[green]{vin} activated[/green] ({total} ms, {doc['bytes_total']} bytes)")
        return EXIT_DONE
    if state == "awaiting_review":
        reviews = ", ".join(doc.get("review_ids") or []) or "?"
        console.print(f"[yellow]{vin} waits for a second operator's review: {reviews}[/yellow]")
        return EXIT_REVIEW
    code = doc.get("error_code") or state
    detail = doc.get("error_detail") or ""
    console.print(f"[red]{vin} {state}: {code}[/red]")
    if detail:
        console.print(f"  {detail}")
    found = _CODES.search(detail)
    if found:
        for reason in found.group(1).split(", "):
            console.print(f"  - {reason}")
    return EXIT_REFUSED if state == "refused" else EXIT_FAILED


def _follow(client: ConsoleClient, view: ActivationView, workflow_id: str) -> dict[str, Any]:
    """Live progress by Server-Sent Events; the stored state afterwards (the final word)."""
    for doc in client.events(workflow_id):
        view.update(doc)
        if doc["state"] == "awaiting_review":
            break
    final = client.progress(workflow_id)
    view.update(final)
    return final


def activate_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    vin: str | None = typer.Argument(None, help="The car's VIN (omit with --batch)."),
    features: str | None = typer.Option(
        None, "--features", help="Comma-separated feature codes (a demo knows each car's)."
    ),
    edge: str | None = _EDGE,
    local: Path | None = _LOCAL,
    username: str | None = _USER,
    password: str | None = _PASSWORD,
    totp: str | None = _TOTP,
    ca: Path | None = _CA,
    batch: Path | None = typer.Option(
        None, "--batch", exists=True, dir_okay=False, help="CSV or JSON file of VINs."
    ),
    reason: str = typer.Option(
        "batch activation requested from the command line", "--reason", help="Why (batch)."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="With --batch: follow the cars once the review is decided."
    ),
) -> None:
    """Activate a car through the edge (live progress per step), or request a reviewed batch."""
    console = Console(highlight=False)

    def body() -> None:
        where = _Where(edge, local, username, password, totp, ca)
        if batch is not None:
            code = _batch(console, batch, features, reason, wait=wait, where=where)
        else:
            code = _single(console, vin, features, where)
        raise typer.Exit(code)

    _run(console, body)


def _single(console: Console, vin: str | None, features: str | None, where: _Where) -> int:
    if vin is None or not _VIN.fullmatch(vin.strip().upper()):
        raise CliProblem(f"not a VIN: {vin!r} (17 characters, no I, O or Q)")
    vin = vin.strip().upper()
    wanted = _features(features) or _demo_features(where.local, vin)
    if not wanted:
        raise CliProblem("name the features: --features CODE[,CODE...]")
    url, login, cache = _resolve(where, default_user="tech")
    with _signed_in(url, login, cache, console, where.ca) as client:
        try:
            workflow_id = client.activate(vin, wanted)
        except ConsoleApiError as exc:
            raise _api_problem(exc) from exc
        console.print(f"activating {vin}: {', '.join(wanted)} (workflow {workflow_id})")
        with ActivationView(console) as view:
            final = _follow(client, view, workflow_id)
    return _outcome(console, final)


def _batch(
    console: Console, batch: Path, features: str | None, reason: str, *, wait: bool, where: _Where
) -> int:
    vins = read_vins(batch)
    wanted = _features(features)
    if not wanted:
        raise CliProblem("a batch activates the same features on every car: --features CODE,...")
    url, login, cache = _resolve(where, default_user="senior")
    with _signed_in(url, login, cache, console, where.ca) as client:
        try:
            ids = client.activate_batch(vins, wanted, reason)
            first = client.progress(ids[0])
        except ConsoleApiError as exc:
            raise _api_problem(exc) from exc
        review = ", ".join(first.get("review_ids") or []) or "?"
        console.print(f"batch of {len(ids)} cars requested; review id: {review}")
        console.print(
            "a second operator (senior technician, service manager or dealer admin) approves it "
            "on the console's Reviews page; the cars then start by themselves"
        )
        if not wait:
            return EXIT_DONE
        codes = []
        with ActivationView(console) as view:
            for workflow_id in ids:
                for doc in client.events(workflow_id):
                    view.update(doc)
                final = client.progress(workflow_id)
                view.update(final)
                codes.append(final)
    results = [_outcome(console, doc) for doc in codes]
    return max(results, default=EXIT_DONE)


# -- consent -------------------------------------------------------------------------------------

_ANSWERABLE = frozenset({"opt_in", "opt_out"})


def consent_answers(
    form: dict[str, Any], agree: list[str], *, agree_all: bool, cross_border: bool | None
) -> dict[str, Any]:
    """The body that records the customer's answers on ``form`` (``GET /api/v1/consent/VIN``).

    Only categories the market lets a customer answer are sent; one named that is not answerable
    (or unknown) is an error rather than silently dropped."""
    answerable = [c["category"] for c in form["categories"] if c["mode"] in _ANSWERABLE]
    unknown = sorted(set(agree) - set(answerable))
    if unknown:
        raise CliProblem(
            f"not answerable in {form['market']}: {', '.join(unknown)} "
            f"(answerable: {', '.join(answerable) or 'none'})"
        )
    chosen = set(answerable) if agree_all else set(agree)
    body: dict[str, Any] = {
        "vin": form["vin"],
        "notice_version": form["notice_version"],
        "language": form["language"],
        "answers": {c: c in chosen for c in answerable},
    }
    if form["cross_border_mode"] in _ANSWERABLE:
        body["cross_border"] = agree_all if cross_border is None else cross_border
    return body


def consent_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    vin: str = typer.Argument(..., help="The car's VIN."),
    subject_ref: str = typer.Option(
        ..., "--subject-ref", help="The customer's reference in the CRM (no personal data)."
    ),
    agree: list[str] = typer.Option([], "--agree", help="A data category agreed to; repeat."),
    agree_all: bool = typer.Option(
        False, "--agree-all", help="Agreed to every category the market lets them answer."
    ),
    cross_border: bool | None = typer.Option(
        None, "--cross-border/--no-cross-border", help="Cross-border processing, where asked."
    ),
    edge: str | None = _EDGE,
    local: Path | None = _LOCAL,
    username: str | None = _USER,
    password: str | None = _PASSWORD,
    totp: str | None = _TOTP,
    ca: Path | None = _CA,
) -> None:
    """Record the customer's privacy choices for VIN (what the console's consent page does)."""
    console = Console(highlight=False)

    def body() -> None:
        if not _VIN.fullmatch(vin.strip().upper()):
            raise CliProblem(f"not a VIN: {vin!r}")
        if not agree and not agree_all:
            raise CliProblem("say what the customer agreed to: --agree CATEGORY or --agree-all")
        url, login, cache = _resolve(_Where(edge, local, username, password, totp, ca), "tech")
        with _signed_in(url, login, cache, console, ca) as client:
            try:
                form = client.consent(vin.strip().upper())
                answers = consent_answers(
                    form, agree, agree_all=agree_all, cross_border=cross_border
                )
                doc = client.record_consent({**answers, "subject_ref": subject_ref})
            except ConsoleApiError as exc:
                raise _api_problem(exc) from exc
        decided = ", ".join(
            f"{c['category']}={'yes' if c['decision'] else 'no'}"
            for c in doc["categories"]
            if c["decision"] is not None
        )
        console.print(f"consent recorded for {doc['vin']} ({doc['market']}): {decided}")

    _run(console, body)


app.command("consent")(consent_command)


# -- edge status ---------------------------------------------------------------------------------

_STYLE = {"ok": "green", "warn": "yellow", "error": "red"}


@app.command("status")
def status_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    edge: str | None = _EDGE,
    local: Path | None = _LOCAL,
    username: str | None = _USER,
    password: str | None = _PASSWORD,
    totp: str | None = _TOTP,
    ca: Path | None = _CA,
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Self-check of the edge box; exit 1 when a check fails (warnings do not fail)."""
    console = Console(highlight=False)

    def body() -> None:
        where = _Where(edge, local, username, password, totp, ca)
        url, login, cache = _resolve(where, default_user="tech")
        with _signed_in(url, login, cache, console, where.ca) as client:
            try:
                doc = client.status()
            except ConsoleApiError as exc:
                raise _api_problem(exc) from exc
        if as_json:
            console.print_json(json.dumps(doc))
        else:
            console.print(status_table(doc))
        raise typer.Exit(EXIT_FAILED if doc["status"] == "error" else EXIT_DONE)

    _run(console, body)


def status_table(doc: dict[str, Any]) -> Table:
    table = Table(
        title=f"Edge {doc['edge_id']} ({doc['dealer_id']}, {doc['market']}): {doc['status']}",
        title_justify="left",
    )
    table.add_column("check")
    table.add_column("status")
    table.add_column("summary")
    for check in doc["checks"]:
        style = _STYLE.get(check["status"], "")
        table.add_row(check["name"], f"[{style}]{check['status']}[/{style}]", check["summary"])
    return table


# -- edge serve, ledger key, operators -----------------------------------------------------------

PASSWORD_ENV = "FORECOURT_OPERATOR_PASSWORD"  # noqa: S105 - the variable's name, not a secret

_DEALER = typer.Option(..., "--dealer-id", help="This store's dealer id.")
_DATA_DIR = typer.Option(
    None, "--data-dir", file_okay=False, help="The edge's state (default: DATA_DIR/edge)."
)
_EDGE_ID = typer.Option(None, "--edge-id", help="The box's name (default: edge-<dealer id>).")
_EDGE_DB = typer.Option(
    None,
    "--database-url",
    help="SQLAlchemy URL (default: SQLite in the data directory, or FORECOURT_DATABASE_URL).",
)


def _edge_settings(
    dealer_id: str,
    data_dir: Path | None,
    edge_id: str | None,
    database_url: str | None,
    *,
    cars: tuple[str, ...] = (),
    cloud_ledger_vkey: str = "",
    cloud_url: str | None = None,
    tls_dir: Path | None = None,
) -> EdgeSettings:
    """The edge's settings from the command line and ``FORECOURT_*``; every edge command uses
    this, so ``serve``, ``ledger-key`` and ``operator`` agree on the directory and database."""
    settings = load_settings()
    directory = data_dir or settings.data_dir / "edge"
    tls = tls_dir or directory / "tls"
    return EdgeSettings(
        data_dir=directory,
        dealer_id=dealer_id,
        edge_id=edge_id or f"edge-{dealer_id.lower()}",
        cloud_url=cloud_url or settings.cloud_url,
        tls_cert=tls / "edge-cert.pem",
        tls_key=tls / "edge-key.pem",
        tls_ca=tls / "ca.pem",
        car_addresses=cars,
        cloud_ledger_vkey=cloud_ledger_vkey,
        database_url=database_url or settings.database_url,
    )


def _vkey(value: str) -> str:
    """A verifier key given inline (``name+hash+key``) or as a file holding one."""
    path = Path(value)
    if "+" not in value or path.is_file():
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliProblem(f"cloud ledger vkey: {value!r} is neither a vkey nor a file") from exc
    return value


@contextmanager
def _accounts(settings: EdgeSettings) -> Iterator[tuple[OperatorService, sessionmaker[Session]]]:
    """The operator accounts in the edge's own database (migrated: works before first serve).

    The edge's ledger is bound to the sessions as the running edge binds it, so an account made
    or enrolled here is ledgered in its own transaction exactly as one made in the console."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.database_url or f"sqlite:///{settings.sqlite_path.as_posix()}"
    engine = create_engine_for(url)
    try:
        totp_key = TotpKey.load_or_create(settings.data_dir)
        migrate(engine, EDGE_BRANCHES, {TOTP_KEY_ATTRIBUTE: totp_key})
        sessions = session_factory(engine)
        totp_key.bind(sessions)
        log = TransparencyLog(
            MerkleLogStore(engine), settings.origin, _ledger_signer(settings.data_dir)
        )
        EdgeAudit(log, settings.edge_id).bind(sessions)
        yield OperatorService(sessions), sessions
    finally:
        engine.dispose()


def _has_operators(sessions: sessionmaker[Session], dealer_id: str) -> bool:
    with sessions() as s:
        return OperatorRepository(s).count_for_dealer(dealer_id) > 0


def _new_password(password_file: Path | None) -> str:
    """From a file, FORECOURT_OPERATOR_PASSWORD, or a hidden prompt typed twice."""
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise CliProblem(f"password file {password_file}: {exc.strerror}") from exc
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _print_enrolment(username: str, role: str, enrolment: TotpEnrolment) -> None:
    """Plain lines (never wrapped: the secret must be copied whole); printed once, never logged."""
    typer.echo(f"operator {username} ({role}) created")
    typer.echo(f"TOTP secret {enrolment.secret} (shown once: add it to the authenticator now)")
    typer.echo(f"otpauth URI {enrolment.provisioning_uri}")


@app.command("serve")
def serve_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    dealer_id: str = _DEALER,
    car: list[str] = typer.Option(
        ..., "--car", help="A car's DoIP address (or the network's broadcast); repeat."
    ),
    cloud_ledger_vkey: str = typer.Option(
        ...,
        "--cloud-ledger-vkey",
        help="The cloud log's checkpoint verifier key, or the file holding it (ledger.vkey).",
    ),
    data_dir: Path | None = _DATA_DIR,
    edge_id: str | None = _EDGE_ID,
    cloud_url: str | None = typer.Option(
        None, "--cloud-url", help="The cloud's URL (default: FORECOURT_CLOUD_URL)."
    ),
    tls_dir: Path | None = typer.Option(
        None, "--tls-dir", help="edge-cert.pem, edge-key.pem, ca.pem (forecourt cloud dealer-cert)."
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8080, "--port"),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", dir_okay=False, help="The console's HTTPS certificate chain (PEM)."
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", dir_okay=False, help="Its private key (PEM)."
    ),
    insecure_http: bool = typer.Option(
        False, "--insecure-http", help="Serve plain HTTP on a non-loopback address (logged)."
    ),
    database_url: str | None = _EDGE_DB,
    sync_interval: float = typer.Option(
        5.0, "--sync-interval", min=0.1, help="Seconds between outbox pushes to the cloud."
    ),
    checkpoint_interval: float = typer.Option(
        60.0, "--checkpoint-interval", min=0.1, help="Seconds between ledger checkpoints."
    ),
) -> None:
    """Run the edge (workflows, sync, offline stock) and its console on HOST:PORT."""
    console = Console(highlight=False)

    def body() -> None:
        try:
            transport = console_transport(
                host, port, tls_cert=tls_cert, tls_key=tls_key, insecure_http=insecure_http
            )
        except (InsecureBindRefused, TlsMaterialMissing) as exc:
            raise CliProblem(str(exc)) from exc
        try:  # before anything starts: a bad threshold is one line naming the key, not a trace
            load_thresholds()
        except AnomalySettingsRefused as exc:
            raise CliProblem(str(exc)) from exc
        settings = _edge_settings(
            dealer_id, data_dir, edge_id, database_url, cars=tuple(car),
            cloud_ledger_vkey=_vkey(cloud_ledger_vkey), cloud_url=cloud_url, tls_dir=tls_dir,
        )  # fmt: skip
        settings = replace(
            settings, sync_interval=sync_interval, checkpoint_interval=checkpoint_interval
        )
        missing = [
            p for p in (settings.tls_cert, settings.tls_key, settings.tls_ca) if not p.exists()
        ]
        if missing:
            raise CliProblem(
                f"no dealer certificate: {', '.join(map(str, missing))} "
                "(forecourt cloud dealer-cert DEALER EDGE --out TLS_DIR)"
            )
        try:
            profile_version, profile = fetch_versioned_dealer_profile(settings)
        except ProfileUnavailable as exc:
            raise CliProblem(f"the cloud's compliance profile is unavailable: {exc}", 5) from exc
        with start_edge(settings) as edge:
            if not _has_operators(edge.sessions, dealer_id):
                console.print(
                    "[yellow]no operator yet:[/yellow] forecourt edge operator bootstrap "
                    f"--dealer-id {dealer_id} --data-dir {settings.data_dir}"
                )
            services = console_services(
                edge, profile, DoipVehicleDirectory(tuple(car)), profile_version=profile_version
            )
            LocalEndpoint(transport.url, dealer_id, settings.edge_id).write(settings.data_dir)
            console.print(f"console on {transport.url}")
            app = create_app(services, ConsoleSettings(secure_cookies=transport.tls))
            uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    ssl_certfile=None if transport.tls_cert is None else str(transport.tls_cert),
                    ssl_keyfile=None if transport.tls_key is None else str(transport.tls_key),
                )
            ).run()

    _run(console, body)


@app.command("ledger-key")
def ledger_key_command(
    dealer_id: str = _DEALER,
    data_dir: Path | None = _DATA_DIR,
    edge_id: str | None = _EDGE_ID,
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Also write it here."),
) -> None:
    """Print the edge log's verifier key (the checkpoint key is created once, mode 0600), for
    ``forecourt cloud register-edge-log``."""
    settings = _edge_settings(dealer_id, data_dir, edge_id, None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    vkey = ledger_verifier(settings).to_vkey()
    if out is not None:
        out.write_text(vkey + "\n", encoding="utf-8")
    typer.echo(vkey)


@app.command("refresh-crl")
def refresh_crl_command(
    dealer_id: str = _DEALER,
    data_dir: Path | None = _DATA_DIR,
    cloud_url: str | None = typer.Option(
        None, "--cloud-url", help="The cloud's URL (default: FORECOURT_CLOUD_URL)."
    ),
    tls_dir: Path | None = typer.Option(
        None, "--tls-dir", help="edge-cert.pem, edge-key.pem, ca.pem and the crl.pem to refresh."
    ),
) -> None:
    """Fetch the issuing CA's CRL and the root's CRL of issuing CAs from the cloud now, and
    replace crl.pem / root-crl.pem with each that is newer.

    The running edge does the same at start and every hour; the next car session delivers the
    new CRLs. A cloud that holds no root CRL is no refusal. Exit codes: 0 updated or
    unchanged, 3 refused (older, expired, foreign or badly signed CRL, or no issuing CA's CRL in
    the cloud; the held file is untouched), 5 cloud unreachable."""
    console = Console(highlight=False)

    def body() -> None:
        settings = _edge_settings(
            dealer_id, data_dir, None, None, cloud_url=cloud_url, tls_dir=tls_dir
        )
        missing = [
            p for p in (settings.tls_cert, settings.tls_key, settings.tls_ca) if not p.exists()
        ]
        if missing:
            raise CliProblem(f"no dealer certificate: {', '.join(map(str, missing))}")
        try:
            issuer = issuing_ca(settings)
        except ValueError as exc:
            raise CliProblem(str(exc)) from exc
        tls = MutualTls(settings.tls_cert, settings.tls_key, settings.tls_ca)
        cloud = HttpCloudClient(settings.cloud_url, tls=tls)
        refreshers = (
            CrlRefresher(cloud, dealer_crl_path(settings), issuer, settings.clock),
            root_crl_refresher(settings, cloud, settings.clock),
        )
        try:
            refreshes = [(r.path, r.refresh()) for r in refreshers]
        except CloudUnreachable as exc:
            raise CliProblem(str(exc), EXIT_UNREACHABLE) from exc
        finally:
            cloud.close()
        for path, refresh in refreshes:
            if refresh.outcome is not CrlOutcome.REFUSED:
                console.print(f"{refresh.describe()} ({path})")
        refused = [r.describe() for _path, r in refreshes if r.outcome is CrlOutcome.REFUSED]
        if refused:
            raise CliProblem("; ".join(refused), EXIT_REFUSED)

    _run(console, body)


operator_app = typer.Typer(no_args_is_help=True)
app.add_typer(
    operator_app, name="operator", help="Operator accounts on this box: first admin, add, enrol."
)


@operator_app.command("bootstrap")
def operator_bootstrap_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    dealer_id: str = _DEALER,
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _EDGE_DB,
    username: str = typer.Option("admin", "--username"),
    display_name: str = typer.Option("Dealer administrator", "--display-name"),
    password_file: Path | None = typer.Option(
        None, "--password-file", dir_okay=False, help=f"Else {PASSWORD_ENV} or a prompt."
    ),
) -> None:
    """Create the dealer's first administrator; refused once the dealer has any operator."""
    console = Console(highlight=False)

    def body() -> None:
        settings = _edge_settings(dealer_id, data_dir, None, database_url)
        with _accounts(settings) as (operators, sessions):
            if _has_operators(sessions, dealer_id):
                raise CliProblem(f"{dealer_id} already has operators; an admin adds more", 1)
            try:
                admin = bootstrap_first_admin(
                    operators, dealer_id, username=username, display_name=display_name,
                    password=_new_password(password_file),
                )  # fmt: skip
            except AlreadyBootstrapped as exc:
                raise CliProblem(f"{dealer_id} already has operators", 1) from exc
            except OperatorError as exc:
                raise CliProblem(f"refused: {exc}") from exc
        _print_enrolment(admin.username, Role.DEALER_ADMIN.value, admin.enrolment)

    _run(console, body)


ENROLMENT_CODE_ENV = "FORECOURT_ENROLMENT_CODE"


@operator_app.command("add")
def operator_add_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    dealer_id: str = _DEALER,
    username: list[str] = typer.Option(..., "--username", help="New operator; repeat for more."),
    role: list[Role] = typer.Option(..., "--role", help="Their role, one per --username."),
    by: str = typer.Option(
        ..., "--by", help="The dealer admin who creates them (signs in: password and TOTP)."
    ),
    totp: str | None = typer.Option(None, "--totp", help="--by's authenticator code (prompted)."),
    display_name: str | None = typer.Option(None, "--display-name", help="One --username only."),
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _EDGE_DB,
) -> None:
    """Add operators on this box as an authenticated dealer admin; prints each one-time code.

    The admin signs in once (password from FORECOURT_OPERATOR_PASSWORD or a prompt, TOTP code), so
    several operators are added with one code. Each new operator gets a one-time enrolment code
    (valid 24 h) and sets their own password and authenticator with ``edge operator enrol``.
    Senior technician, service manager and dealer admin wait for a second operator's approval.
    """
    console = Console(highlight=False)

    def body() -> None:
        if len(username) != len(role):
            raise CliProblem("give one --role per --username")
        if display_name is not None and len(username) != 1:
            raise CliProblem("--display-name needs exactly one --username")
        password = os.environ.get(PASSWORD_ENV) or str(
            typer.prompt(f"Password of {by}", hide_input=True)
        )
        code = totp or str(typer.prompt(f"Authenticator code of {by}"))
        settings = _edge_settings(dealer_id, data_dir, None, database_url)
        with _accounts(settings) as (operators, _sessions):
            try:
                actor = operators.verify_credentials(dealer_id, by, password, code)
            except OperatorError as exc:
                raise CliProblem(f"{by} not signed in: {exc}", EXIT_REFUSED) from exc
            for name, name_role in zip(username, role, strict=True):
                try:
                    created = operators.create_operator(
                        actor, dealer_id=dealer_id, username=name,
                        display_name=display_name or name, role=name_role,
                    )  # fmt: skip
                except OperatorError as exc:
                    raise CliProblem(f"refused: {exc}", EXIT_REFUSED) from exc
                _print_enrolment_code(name, name_role.value, created)

    _run(console, body)


def _print_enrolment_code(username: str, role: str, created: NewOperator) -> None:
    """What the admin hands to the new operator: the code only (never a password or secret)."""
    typer.echo(f"operator {username} ({role}) created")
    typer.echo(
        f"enrolment code {created.enrolment_code} "
        f"(once, until {created.enrolment_expires_at.isoformat(timespec='minutes')})"
    )
    if created.review_id is not None:
        typer.echo(f"role awaits a second operator's approval: review {created.review_id}")


@operator_app.command("enrol")
def operator_enrol_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    dealer_id: str = _DEALER,
    username: str = typer.Option(..., "--username", help="Your username."),
    totp: str | None = typer.Option(
        None, "--totp", help="First code of the new authenticator: finishes the enrolment."
    ),
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _EDGE_DB,
    password_file: Path | None = typer.Option(
        None, "--password-file", dir_okay=False, help=f"Else {PASSWORD_ENV} or a prompt."
    ),
) -> None:
    """First sign-in with the one-time code from your admin (FORECOURT_ENROLMENT_CODE or prompt).

    Without --totp: shows the QR code of your new authenticator secret. With --totp: sets your own
    password and confirms the authenticator; the enrolment code is spent.
    """
    console = Console(highlight=False)

    def body() -> None:
        code = os.environ.get(ENROLMENT_CODE_ENV) or str(
            typer.prompt("Enrolment code", hide_input=True)
        )
        settings = _edge_settings(dealer_id, data_dir, None, database_url)
        with _accounts(settings) as (operators, _sessions):
            try:
                if totp is None:
                    enrolment = operators.begin_enrolment(dealer_id, username, code)
                else:
                    new_password = _new_password(password_file)
                    operators.complete_enrolment(dealer_id, username, code, new_password, totp)
            except OperatorError as exc:
                raise CliProblem(f"refused: {exc}", EXIT_REFUSED) from exc
        if totp is None:
            typer.echo(enrolment.qr_terminal_text())
            typer.echo(f"TOTP secret {enrolment.secret} (add it to your authenticator now)")
            typer.echo(f"otpauth URI {enrolment.provisioning_uri}")
            typer.echo("then run again with --totp CODE to choose your password")
        else:
            typer.echo(f"operator {username} enrolled")

    _run(console, body)


@operator_app.command("rotate-totp-key")
def operator_rotate_totp_key_command(
    data_dir: Path | None = _DATA_DIR,
    database_url: str | None = _EDGE_DB,
) -> None:
    """Seal every operator's TOTP secret under a new key (operator-totp.key), with the edge stopped.

    Confirmed and pending secrets are re-sealed in one transaction, then the key file is replaced
    atomically; the previous key stays readable as operator-totp.key.old until the next rotation
    (rotate twice to retire a leaked key for good). Interrupted, it loses nothing: run it again.
    Exit codes: 0 rotated, 1 a stored secret opens under no key of this edge (nothing changed),
    2 no key to rotate, 3 refused while the edge is running."""
    console = Console(highlight=False)

    def body() -> None:
        settings = load_settings()
        directory = data_dir or settings.data_dir / "edge"
        if not (directory / TOTP_KEY_FILE).exists():
            raise _rotation_refused(f"no {TOTP_KEY_FILE} in {directory}: nothing to rotate")
        running = _running_console(directory)
        if running is not None:
            raise _rotation_refused(
                f"the edge is running ({running}): it holds the old key in memory and would "
                "refuse every re-sealed secret; stop it, rotate, start it again",
                EXIT_REFUSED,
            )
        url = database_url or settings.database_url or f"sqlite:///{directory / 'edge.sqlite3'}"
        engine = create_engine_for(url)
        try:
            migrate(engine, EDGE_BRANCHES, {TOTP_KEY_ATTRIBUTE: TotpKey.load_or_create(directory)})
            rotation = rotate_totp_key(directory, session_factory(engine))
        except TotpKeyRotationError as exc:
            raise CliProblem(str(exc), EXIT_FAILED) from exc
        finally:
            engine.dispose()
        resumed = " (an interrupted rotation finished)" if rotation.resumed else ""
        console.print(
            f"TOTP key rotated{resumed}: {rotation.resealed} secrets re-sealed under key "
            f"{rotation.key_id}; key {rotation.retired_key_id} kept readable until the next "
            "rotation"
        )

    _run(console, body)


def _rotation_refused(reason: str, exit_code: int = 2) -> CliProblem:
    _log.warning("totp_key_rotation_refused", reason=reason)
    return CliProblem(reason, exit_code)


def _running_console(directory: Path) -> str | None:
    """The console URL of an edge serving from ``directory``, or None.

    ``serve`` writes console.json and leaves it behind when it stops, so the file alone proves
    nothing: whether something still accepts connections on its address decides."""
    try:
        url = LocalEndpoint.read(directory).url
    except EndpointNotFound:
        return None
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - bound to every address: ask the loopback one
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return url
    except OSError:
        return None


# -- transparency report -------------------------------------------------------------------------


@app.command("transparency-report")
def transparency_report_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    dealer_id: str = _DEALER,
    out: Path = typer.Option(..., "--out", dir_okay=False, help="The file to write."),
    data_dir: Path | None = _DATA_DIR,
    start: str | None = typer.Option(
        None, "--from", help="First day covered, YYYY-MM-DD (default: the last full quarter)."
    ),
    end: str | None = typer.Option(
        None, "--to", help="First day NOT covered, YYYY-MM-DD (the period is [from, to))."
    ),
    fmt: str = typer.Option("html", "--format", help="html, json or pdf."),
    profile_file: Path | None = typer.Option(
        None,
        "--profile",
        dir_okay=False,
        help="The compliance profile as the cloud publishes it ({version, profile} JSON); "
        "default: fetched from the cloud with the edge's certificate.",
    ),
    edge_id: str | None = _EDGE_ID,
    database_url: str | None = _EDGE_DB,
) -> None:
    """Write the store's transparency report for a period: activations, consent and its
    withdrawal, data processed and why, operator activity per role, reviews, anomalies, and the
    ledger checkpoint backing them. Aggregates only; cells below 5 read "< 5".
    Exit codes: 0 written, 2 bad input (nothing written), 5 profile unavailable from the cloud."""
    console = Console(highlight=False)

    def body() -> None:
        from datetime import UTC, datetime  # noqa: PLC0415 - the command loads its part lazily

        from forecourt.edge import transparency as tr  # noqa: PLC0415
        from forecourt.edge.app.transparency_pages import english_purposes  # noqa: PLC0415
        from forecourt.edge.transparency.local import (  # noqa: PLC0415
            ReportSourceError,
            edge_database,
            load_profile,
            write_whole,
        )

        def refuse(reason: str, exit_code: int = 2) -> CliProblem:
            _log.warning("transparency_report_refused", dealer_id=dealer_id, reason=reason)
            return CliProblem(reason, exit_code)

        if fmt not in tr.FORMATS:
            raise refuse(f"--format must be one of {', '.join(tr.FORMATS)}, not {fmt!r}")
        now = datetime.now(UTC)
        try:
            if start is None and end is None:
                period = tr.last_full_quarter(now.date())
            elif start is None or end is None:
                raise refuse("give both --from and --to, or neither (the last full quarter)")
            else:
                period = tr.Period.parse(start, end)
        except tr.PeriodError as exc:
            raise refuse(str(exc)) from exc
        settings = _edge_settings(dealer_id, data_dir, edge_id, database_url)
        try:
            if profile_file is not None:
                profile = load_profile(profile_file)
            else:
                try:
                    version, fetched = fetch_versioned_dealer_profile(settings)
                    profile = tr.ProfileInForce(fetched, version)
                except ProfileUnavailable as exc:
                    raise refuse(f"the compliance profile is unavailable: {exc}", 5) from exc
            with edge_database(settings) as (sessions, ledger):
                reports = tr.TransparencyReports(
                    sessions, dealer_id, profile, purposes=english_purposes(), ledger=ledger
                )
                report = reports.build(period, now)
            write_whole(out, tr.render(report, fmt))
        except ReportSourceError as exc:
            raise refuse(str(exc)) from exc
        console.print(f"{fmt} report for {dealer_id}, {period.label}, written to {out}")

    _run(console, body)
