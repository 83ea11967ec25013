"""``forecourt cloud deliver-webhooks``: the delivery worker outside a server process.

``--once`` delivers everything due now and exits (after an outage, from cron, in a runbook);
without it the worker runs until interrupted, for a deployment that keeps delivery apart from
the API replicas. Either way it may run beside ``cloud serve``: deliveries are claimed, never
sent twice at once.
"""

from __future__ import annotations

import threading

import typer
from sqlalchemy.exc import SQLAlchemyError

from forecourt.cloud.db import Database
from forecourt.cloud.integrations.delivery import RETRY, WebhookDispatcher
from forecourt.cloud.integrations.sealing import (
    SecretSealer,
    WebhookKeyError,
    default_key_path,
)
from forecourt.cloud.integrations.subscriptions import DEAD, DELIVERED
from forecourt.settings import load_settings


def deliver_webhooks_command(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
    interval: float = typer.Option(
        2.0, "--interval", min=0.1, help="Seconds between runs (without --once)."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="SQLAlchemy URL (default: FORECOURT_DATABASE_URL)."
    ),
) -> None:
    """Send due webhooks (signed, retried with backoff, dead-lettered after the last attempt)."""
    db = Database(database_url or load_settings().sqlalchemy_url("cloud"))
    dispatcher = WebhookDispatcher(db, SecretSealer.from_file(default_key_path))
    stop = threading.Event()
    try:
        while True:
            report = dispatcher.run_once(stop)
            typer.echo(
                f"events {report.fanned_out}, delivered {report.count(DELIVERED)}, "
                f"retrying {report.count(RETRY)}, dead-lettered {report.count(DEAD)}"
            )
            if once or stop.wait(interval):
                break
    except (SQLAlchemyError, WebhookKeyError) as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        stop.set()
    finally:
        dispatcher.close()
        db.dispose()
