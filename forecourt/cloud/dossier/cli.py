"""``forecourt cloud dossier VIN``: the car's dossier straight from the cloud database.

For an auditor, a buyer's inspection or a support case without the API: the same document as
``GET /v1/vehicles/{vin}/dossier``, as JSON or as a standalone HTML page. The command only reads
(it never migrates the database), and the output file appears whole or not at all (written
beside its destination, then renamed).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from forecourt.cloud.db import Database
from forecourt.cloud.dossier.document import build_dossier
from forecourt.cloud.dossier.html import render_html
from forecourt.cloud.dossier.queries import parse_vin, read_facts
from forecourt.cloud.problems import CloudProblem
from forecourt.logging import get_logger
from forecourt.settings import load_settings

_log = get_logger("cloud.dossier")


class DossierFormat(StrEnum):
    JSON = "json"
    HTML = "html"


def _refuse(vin: str, code: str, message: str, exit_code: int) -> typer.Exit:
    """Log the refusal (no secret: the URL's password is never part of ``message``), print it."""
    _log.warning("dossier_refused", vin=vin[:40], code=code, detail=message)
    typer.echo(f"{code}: {message}", err=True)
    return typer.Exit(exit_code)


def _database_url(url: str | None) -> str:
    return url or load_settings().sqlalchemy_url("cloud")


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (``None`` for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return None if not path or path == ":memory:" else Path(path)


def _write_atomically(out: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def dossier_command(
    vin: str = typer.Argument(..., help="The car's VIN (17 characters)."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where the dossier goes."),
    output_format: DossierFormat = typer.Option(
        DossierFormat.JSON, "--format", help="json (the API's document) or html (a page)."
    ),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="SQLAlchemy URL of the cloud database (default: FORECOURT_DATABASE_URL, else SQLite).",
    ),
) -> None:
    """Write one car's dossier (factory record to the latest activation, with its timeline)
    from the cloud database, as JSON or a standalone HTML page for a used-car buyer."""
    try:
        parsed = parse_vin(vin)
    except CloudProblem as exc:
        raise _refuse(vin, exc.code.value, exc.detail, 2) from exc
    if not out.parent.is_dir():
        raise _refuse(vin, "output_invalid", f"{out.parent} is not a directory", 2)
    url = _database_url(database_url)
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.is_file():
        # Opening it would create an empty database file: say what is wrong instead.
        raise _refuse(vin, "database_unavailable", f"no database file {sqlite_file}", 1)
    db = Database(url, run_migrations=False)
    try:
        facts = read_facts(db, parsed)
    except CloudProblem as exc:
        raise _refuse(parsed.value, exc.code.value, exc.detail, 1) from exc
    except SQLAlchemyError as exc:
        reason = type(getattr(exc, "orig", None) or exc).__name__
        raise _refuse(
            parsed.value, "database_unavailable", f"the cloud database cannot be read ({reason})", 1
        ) from exc
    finally:
        db.dispose()
    document = build_dossier(facts, datetime.now(UTC))
    text = (
        render_html(document)
        if output_format is DossierFormat.HTML
        else json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    )
    _write_atomically(out, text)
    _log.info("dossier_written", vin=parsed.value, format=output_format.value)
    typer.echo(f"{parsed.value}: {len(document['timeline'])} events -> {out}")
