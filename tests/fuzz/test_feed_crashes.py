"""Regressions, found by fuzzing forecourt/cloud/registry/feed.py: each input raised out of the
service function. An unreadable feed must be a 422 problem; a row the database cannot hold must be
that row's error while the other rows import.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from forecourt.cloud.problems import CloudProblem
from forecourt.cloud.registry.feed import import_rows, parse_feed
from forecourt.store.engine import create_engine_for, migrate, session_factory
from tests.fuzz.test_feed import CSV_FEED, ROWS


@pytest.mark.parametrize(
    ("raw", "media_type"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),  # RecursionError
        (CSV_FEED.replace(b",2025,", ",²,".encode()), "text/csv"),  # ValueError from int("²")
        (CSV_FEED.replace(b",2025,", b"," + b"1" * 5000 + b","), "text/csv"),  # int() digit limit
        (CSV_FEED.replace(b",TERRA,", b"," + b"x" * 200_000 + b","), "text/csv"),  # csv.Error
        (CSV_FEED.replace(b",TERRA,", b",TE\rRA,"), "text/csv"),  # csv.Error: bare CR in a field
    ],
    ids=["deep-json", "superscript-year", "5000-digit-year", "huge-csv-field", "bare-cr"],
)
def test_an_unreadable_feed_is_a_422_problem(raw: bytes, media_type: str) -> None:
    try:
        rows = parse_feed(raw, media_type)
    except CloudProblem as problem:
        assert problem.status == 422
    else:
        assert all(isinstance(r, dict) for r in rows)


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(sqlite_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def test_a_model_year_beyond_64_bits_is_a_row_error(sessions: sessionmaker[Session]) -> None:
    row = copy.deepcopy(ROWS[1])
    row["vin"] = row["vin"][:9] + "U" + row["vin"][10:]  # U is no year code: no VIN cross-check
    row["model_year"] = 2**64  # OverflowError from the SQLite driver, out of import_rows
    report = import_rows(sessions, [row, ROWS[0]])
    assert len(report.errors) == 1 and report.created == 1


def test_a_lone_surrogate_in_a_json_feed_is_a_row_error(sessions: sessionmaker[Session]) -> None:
    row = copy.deepcopy(ROWS[1])
    row["ecus"][0]["serial"] = "\ud800"  # valid JSON ("\\ud800"); UnicodeEncodeError in SQLite
    report = import_rows(sessions, [row, ROWS[0]])
    assert len(report.errors) == 1 and report.created == 1
