"""``forecourt cloud lifecycle VIN --to STATE [--owner REF] [--dealer ID]``.

For a back office without the API (a batch of handovers, a scrapping certificate): the same
change as ``POST /v1/vehicles/{vin}/lifecycle``, in one transaction with its ledger records. It
only appends to the cloud's log (no signing key is needed: checkpoints are issued by the running
cloud). Exits 0 with the result as JSON, 1 when the change is refused (the problem code is
printed), 2 when the database cannot be reached.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import typer
from sqlalchemy.exc import SQLAlchemyError

from forecourt.cloud.config import CloudConfig
from forecourt.cloud.db import Database
from forecourt.cloud.dossier.queries import parse_vin
from forecourt.cloud.lifecycle.service import LifecycleService
from forecourt.cloud.problems import CloudProblem
from forecourt.core import LifecycleState
from forecourt.ledger.repository import MerkleLogStore
from forecourt.logging import get_logger
from forecourt.settings import load_settings

_log = get_logger("cloud.lifecycle")


def lifecycle_command(  # noqa: PLR0917 - Typer maps each parameter to an option
    vin: str = typer.Argument(..., help="The car's VIN."),
    to: LifecycleState = typer.Option(..., "--to", help="The state the car moves to."),
    owner: str | None = typer.Option(
        None, "--owner", help="The owner's CRM reference (handover, transfer, registration)."
    ),
    dealer: str | None = typer.Option(
        None, "--dealer", help="The dealer where it happens (default: the car's)."
    ),
    ledger_origin: str = typer.Option(
        CloudConfig.ledger_origin, "--ledger-origin", help="The central ledger's origin line."
    ),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="SQLAlchemy URL (default: FORECOURT_DATABASE_URL, else SQLite).",
    ),
) -> None:
    """Move a car along one lifecycle edge, recorded in the cloud's ledger."""
    db = Database(database_url or load_settings().sqlalchemy_url("cloud"), run_migrations=False)
    service = LifecycleService(MerkleLogStore(db.engine), ledger_origin, lambda: datetime.now(UTC))
    actor = f"cli:{os.environ.get('USER', 'unknown')}"
    try:
        with db.transaction() as session:
            result = service.transition(
                session, str(parse_vin(vin)), to, actor=actor, owner_ref=owner, dealer_id=dealer
            )
    except CloudProblem as exc:
        _log.warning("lifecycle_command_refused", vin=vin[:40], code=exc.code.value)
        typer.echo(f"{exc.code.value}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    except SQLAlchemyError as exc:
        _log.warning("lifecycle_database_unavailable", error=type(exc).__name__)
        typer.echo(f"database unavailable: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    typer.echo(json.dumps(result.to_json(), indent=2))
