"""Factory feed import: CSV or JSON, idempotent, every bad row reported with its reason.

A row is a car as the plant built it. Importing the same feed twice changes nothing (rows already
registered with the same factory record are ``unchanged``); a row whose VIN is registered with a
*different* factory record is an error (the factory record is immutable) and leaves the stored car
as it was. One bad row never stops the others: each row commits or fails alone.

CSV columns: ``vin, model, model_year, plant, build_date, market, option_codes`` (space
separated), ``ecus`` (a JSON array of ECU objects in the core codec form), optional ``state`` and
``dealer_id``. JSON: an array of vehicle objects in the core codec form.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.vehicles import factory_digest, insert_vehicle
from forecourt.core import CoreError, Vehicle, from_dict
from forecourt.logging import get_logger
from forecourt.store.registry import DealerRow, VehicleRow

_log = get_logger("cloud.registry.feed")
MAX_FEED_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class RowError:
    """Row ``row`` (1-based, header excluded) was not imported, and why."""

    row: int
    vin: str | None
    error: str


@dataclass
class ImportReport:
    created: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "unchanged": self.unchanged,
            "failed": len(self.errors),
            "errors": [{"row": e.row, "vin": e.vin, "error": e.error} for e in self.errors],
        }


def parse_feed(content: bytes, media_type: str) -> list[dict[str, Any]]:
    """Rows as codec-form dictionaries; ``import_format_invalid`` if the file is unreadable."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _format_problem(f"feed is not UTF-8: {exc.reason}") from exc
    if "json" in media_type:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _format_problem(f"feed is not JSON: {exc.msg} at line {exc.lineno}") from exc
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise _format_problem("a JSON feed is an array of vehicle objects")
        rows: list[dict[str, Any]] = data
    elif "csv" in media_type:
        rows = [_csv_row(r) for r in csv.DictReader(io.StringIO(text))]
    else:
        raise _format_problem(f"unsupported media type {media_type!r}: use text/csv or JSON")
    if len(rows) > MAX_FEED_ROWS:
        raise _format_problem(f"{len(rows)} rows; at most {MAX_FEED_ROWS} per feed")
    return rows


def _csv_row(row: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
    if "model_year" in out:
        out["model_year"] = (
            int(out["model_year"]) if out["model_year"].isdigit() else out["model_year"]
        )
    out["option_codes"] = (row.get("option_codes") or "").split()
    try:
        out["ecus"] = json.loads(row.get("ecus") or "[]")
    except json.JSONDecodeError as exc:
        out["ecus"] = f"<invalid ECU JSON: {exc.msg}>"
    return out


def _format_problem(detail: str) -> CloudProblem:
    return CloudProblem(422, ProblemCode.IMPORT_FORMAT, "Feed cannot be read", detail)


def import_rows(sessions: sessionmaker[Session], rows: list[dict[str, Any]]) -> ImportReport:
    """Import each row in its own transaction; see the module docstring for the rules."""
    report = ImportReport()
    for number, raw in enumerate(rows, start=1):
        vin = raw.get("vin") if isinstance(raw.get("vin"), str) else None
        try:
            vehicle = from_dict(Vehicle, raw)
        except (CoreError, TypeError, ValueError, KeyError, AttributeError) as exc:
            report.errors.append(RowError(number, vin, str(exc)))
            continue
        try:
            with sessions() as session, session.begin():
                outcome = _import_one(session, vehicle)
        except IntegrityError:
            # Another importer registered the VIN between our read and write: read again.
            with sessions() as session, session.begin():
                outcome = _import_one(session, vehicle)
        if outcome is None:
            report.created += 1
        elif outcome == "":
            report.unchanged += 1
        else:
            report.errors.append(RowError(number, str(vehicle.vin), outcome))
    _log.info(
        "feed_imported",
        created=report.created,
        unchanged=report.unchanged,
        failed=len(report.errors),
    )
    return report


def _import_one(session: Session, vehicle: Vehicle) -> str | None:
    """``None`` when created, ``""`` when unchanged, else the error text."""
    existing = session.get(VehicleRow, str(vehicle.vin))
    if existing is not None:
        if existing.feed_digest == factory_digest(vehicle):
            return ""
        return "VIN already registered with a different factory record"
    if vehicle.dealer_id is not None and session.get(DealerRow, vehicle.dealer_id) is None:
        return f"dealer {vehicle.dealer_id} is not registered"
    insert_vehicle(session, vehicle)
    return None
