"""Factory feed import: CSV or JSON, idempotent, every bad row reported with its reason.

A row is a car as the plant built it. Importing the same feed twice changes nothing (rows already
registered with the same factory record are ``unchanged``); a row whose VIN is registered with a
*different* factory record is an error (the factory record is immutable) and leaves the stored car
as it was. One bad row never stops the others: each row commits or fails alone.

CSV columns: ``vin, model, model_year, plant, build_date, market, option_codes`` (space
separated), ``ecus`` (a JSON array of ECU objects in the core codec form), optional ``state`` and
``dealer_id``. JSON: an array of vehicle objects in the core codec form.

A feed that cannot be framed into rows (not UTF-8, not JSON, nested beyond the parser, a CSV
record the reader refuses) is a 422 problem and nothing is imported. A row whose values cannot be
stored (see :mod:`forecourt.cloud.registry.feed_checks`) is refused alone, logged with its row
number, field and reason; values are never logged, so nothing personal reaches the log.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.feed_checks import FieldProblem, storage_problem, text_problem
from forecourt.cloud.registry.vehicles import factory_digest, insert_vehicle
from forecourt.core import CoreError, DomainValueError, Vehicle, from_dict
from forecourt.logging import get_logger
from forecourt.store.registry import DealerRow, VehicleRow

_log = get_logger("cloud.registry.feed")
MAX_FEED_ROWS = 100_000
MAX_ERROR_TEXT = 300  # a codec message may quote a value; the report keeps it short
_CSV_YEAR = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() accepts "²"


@dataclass(frozen=True, slots=True)
class UnreadableCell:
    """A CSV cell that could not be decoded (the row is refused with this reason)."""

    reason: str


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
        rows = _json_rows(text)
    elif "csv" in media_type:
        rows = _csv_rows(text)
    else:
        raise _format_problem(f"unsupported media type {media_type!r}: use text/csv or JSON")
    if len(rows) > MAX_FEED_ROWS:
        raise _format_problem(f"more than {MAX_FEED_ROWS} rows; at most {MAX_FEED_ROWS} per feed")
    return rows


def _json_rows(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _format_problem(f"feed is not JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:
        # The C decoder counts its depth and raises cleanly; nothing is left half-built.
        raise _format_problem("feed JSON is nested deeper than the parser allows") from exc
    except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
        raise _format_problem(f"feed JSON cannot be read: {str(exc)[:MAX_ERROR_TEXT]}") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise _format_problem("a JSON feed is an array of vehicle objects")
    return data


def _csv_rows(text: str) -> list[dict[str, Any]]:
    # Lines end at LF only (CRLF works too): a bare CR in an unquoted field is a csv.Error, not a
    # silent record break that would shift the rest of the row into a new one.
    reader = csv.DictReader(io.StringIO(text))
    try:
        # One row past the limit is enough to refuse the feed; do not read a million more.
        return [_csv_row(r) for r in itertools.islice(reader, MAX_FEED_ROWS + 1)]
    except csv.Error as exc:  # field over csv.field_size_limit(), CR/LF in an unquoted field
        raise _format_problem(f"CSV record starting at line {reader.line_num + 1}: {exc}") from exc


def _csv_row(row: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
    year = out.get("model_year")
    if isinstance(year, str) and _CSV_YEAR.fullmatch(year):
        out["model_year"] = int(year)  # anything else stays text and fails the codec's int check
    out["option_codes"] = (row.get("option_codes") or "").split()
    try:
        out["ecus"] = json.loads(row.get("ecus") or "[]")
    except json.JSONDecodeError as exc:
        out["ecus"] = UnreadableCell(f"invalid JSON: {exc.msg}")
    except RecursionError:
        out["ecus"] = UnreadableCell("JSON nested deeper than the parser allows")
    except ValueError as exc:
        out["ecus"] = UnreadableCell(f"JSON cannot be read: {str(exc)[:MAX_ERROR_TEXT]}")
    return out


def _format_problem(detail: str) -> CloudProblem:
    return CloudProblem(422, ProblemCode.IMPORT_FORMAT, "Feed cannot be read", detail)


def import_rows(sessions: sessionmaker[Session], rows: list[dict[str, Any]]) -> ImportReport:
    """Import each row in its own transaction; see the module docstring for the rules."""
    report = ImportReport()
    for number, raw in enumerate(rows, start=1):
        vehicle = _decode(raw)
        if isinstance(vehicle, FieldProblem):
            _refuse(report, number, _report_vin(raw), vehicle)
            continue
        vin = str(vehicle.vin)
        try:
            outcome = _import_with_retry(sessions, vehicle)
        except DataError as exc:
            # The checks above should leave nothing for the database to refuse; if a schema
            # change outruns them, the row is refused alone rather than stopping the feed.
            _refuse(
                report, number, vin, FieldProblem("row", f"database refused it ({exc.orig!r:.80})")
            )
            continue
        if outcome is None:
            report.created += 1
        elif outcome == "":
            report.unchanged += 1
        else:
            _refuse(report, number, vin, FieldProblem("vin", outcome))
    _log.info(
        "feed_imported",
        created=report.created,
        unchanged=report.unchanged,
        failed=len(report.errors),
    )
    return report


def _decode(raw: object) -> Vehicle | FieldProblem:
    """The row as a :class:`Vehicle` that storage can hold, or the first thing wrong with it."""
    if not isinstance(raw, dict):
        return FieldProblem("row", f"a row is a JSON object, not {type(raw).__name__}")
    for name, value in raw.items():
        if isinstance(value, UnreadableCell):
            return FieldProblem(str(name), value.reason)
    problem = text_problem(raw)
    if problem is not None:
        return problem
    try:
        vehicle = from_dict(Vehicle, raw)
    except DomainValueError as exc:
        return FieldProblem(exc.field, exc.reason[:MAX_ERROR_TEXT])
    except (CoreError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return FieldProblem("row", str(exc)[:MAX_ERROR_TEXT])
    return storage_problem(vehicle) or vehicle


def _import_with_retry(sessions: sessionmaker[Session], vehicle: Vehicle) -> str | None:
    try:
        with sessions() as session, session.begin():
            return _import_one(session, vehicle)
    except IntegrityError:
        # Another importer registered the VIN between our read and write: read again.
        with sessions() as session, session.begin():
            return _import_one(session, vehicle)


def _report_vin(raw: object) -> str | None:
    """The row's VIN for the report, only when it is short, storable text (it is echoed back)."""
    vin = raw.get("vin") if isinstance(raw, dict) else None
    if isinstance(vin, str) and len(vin) <= 32 and text_problem({"vin": vin}) is None:
        return vin
    return None


def _refuse(report: ImportReport, number: int, vin: str | None, problem: FieldProblem) -> None:
    report.errors.append(RowError(number, vin, str(problem)))
    _log.info("feed_row_refused", row=number, field=problem.field, reason=problem.reason)


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
