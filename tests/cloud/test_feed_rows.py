"""Factory feed import: a row the database cannot hold is refused alone, named by row, field and
reason in the report and the log (never its values), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from forecourt.cloud.problems import CloudProblem
from forecourt.cloud.registry.feed import import_rows, parse_feed
from forecourt.store.engine import create_engine_for, migrate, session_factory
from forecourt.store.registry import EcuRow, VehicleRow
from tests.fuzz.test_feed import CSV_FEED, ROWS

SECRETLESS_MARKER = "PERSONAL-LOOKING-VALUE"


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(db_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def _no_year_code(row: dict[str, Any]) -> dict[str, Any]:
    """A copy whose VIN has no model-year code (U), so only the range check judges the year."""
    out = copy.deepcopy(row)
    out["vin"] = out["vin"][:9] + "U" + out["vin"][10:]
    return out


def _set(row: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    out = copy.deepcopy(row)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def _stored_vins(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(VehicleRow.vin)).all())


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (_set(_no_year_code(ROWS[1]), ("model_year",), 2**64), "model_year"),
        (_set(_no_year_code(ROWS[1]), ("model_year",), 1979), "model_year"),
        (_set(_no_year_code(ROWS[1]), ("model_year",), 2040), "model_year"),
        (_set(ROWS[1], ("ecus", 0, "serial"), "SN\ud800"), "ecus[0].serial"),
        (_set(ROWS[1], ("model",), "TE\x00RRA"), "model"),
        (_set(ROWS[1], ("ecus", 0, "hardware_number"), "H" * 65), "ecus[0].hardware_number"),
        (_set(ROWS[1], ("plant",), "P" * 33), "plant"),
    ],
    ids=["year-2**64", "year-1979", "year-2040", "lone-surrogate", "nul", "long-hw", "long-plant"],
)
def test_a_row_the_database_cannot_hold_is_refused_alone_with_its_field_named(
    sessions: sessionmaker[Session], bad: dict[str, Any], field: str
) -> None:
    with capture_logs() as logs:
        report = import_rows(sessions, [ROWS[0], bad])
    assert report.created == 1 and len(report.errors) == 1
    error = report.errors[0]
    assert error.row == 2 and error.error.startswith(f"{field}: ")
    assert _stored_vins(sessions) == [ROWS[0]["vin"]]
    refused = [e for e in logs if e["event"] == "feed_row_refused"]
    assert [(e["row"], e["field"]) for e in refused] == [(2, field)]
    json.dumps(report.to_json(), ensure_ascii=False).encode()  # the report itself is sendable


def test_a_refused_row_leaves_no_ecu_rows_behind(sessions: sessionmaker[Session]) -> None:
    bad = _set(ROWS[1], ("ecus", 1, "serial"), "S" * 65)
    report = import_rows(sessions, [bad])
    assert report.created == 0 and report.errors[0].error.startswith("ecus[1].serial: ")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(EcuRow)) == 0


def test_the_refusal_log_names_row_field_and_reason_but_never_the_value(
    sessions: sessionmaker[Session],
) -> None:
    bad = _set(ROWS[1], ("model",), SECRETLESS_MARKER * 3)
    with capture_logs() as logs:
        import_rows(sessions, [bad])
    (event,) = [e for e in logs if e["event"] == "feed_row_refused"]
    assert event["row"] == 1 and event["field"] == "model" and "at most 32" in event["reason"]
    assert SECRETLESS_MARKER not in repr(logs)


@pytest.mark.parametrize(
    "year",
    ["²", "1" * 5000, "２０２５", "-2025"],
    ids=["superscript", "5000-digits", "fullwidth", "neg"],
)
def test_a_csv_model_year_that_is_not_ascii_digits_is_that_rows_error(
    sessions: sessionmaker[Session], year: str
) -> None:
    feed = CSV_FEED.replace(b",2025,", f",{year},".encode(), 1)
    rows = parse_feed(feed, "text/csv")
    report = import_rows(sessions, rows)
    assert report.created == 1 and len(report.errors) == 1 and report.errors[0].row == 1
    assert report.errors[0].error.startswith("model_year: ")
    assert len(report.errors[0].error) <= 300


def test_a_csv_ecus_cell_nested_beyond_the_parser_is_that_rows_error(
    sessions: sessionmaker[Session],
) -> None:
    lines = CSV_FEED.decode().splitlines(keepends=True)
    deep = "[" * 60_000 + "]" * 60_000
    header, first = lines[0], lines[1]
    cell_start = first.index('"[')
    feed = (header + first[:cell_start] + deep + "\r\n" + "".join(lines[2:])).encode()
    report = import_rows(sessions, parse_feed(feed, "text/csv"))
    assert report.created == 1 and report.errors[0].row == 1
    assert report.errors[0].error.startswith("ecus: ")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'[{"model_year": ' + b"1" * 5000 + b"}]", "cannot be read"),
        (CSV_FEED.replace(b",TERRA,", b"," + b"x" * 200_000 + b","), "line 2"),
        (CSV_FEED.replace(b",TERRA,", b",TE\rRA,"), "line 2"),
    ],
    ids=["deep-json", "huge-json-integer", "huge-csv-field", "bare-cr"],
)
def test_an_unframeable_feed_is_a_422_problem_that_says_where(raw: bytes, words: str) -> None:
    media_type = "application/json" if raw.startswith(b"[") else "text/csv"
    with pytest.raises(CloudProblem) as caught:
        parse_feed(raw, media_type)
    assert caught.value.status == 422 and words in str(caught.value.detail)
