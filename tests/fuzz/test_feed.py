"""Factory feed import (cloud registry): a garbage feed is a 422 problem, a garbage row is that
row's error; every row lands whole or not at all, on a migrated SQLite database.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from forecourt.cloud.problems import CloudProblem
from forecourt.cloud.registry.feed import import_rows, parse_feed
from forecourt.core import LifecycleState, build_vin, to_dict
from forecourt.store.engine import create_engine_for, migrate, session_factory
from forecourt.store.registry import EcuRow, VehicleRow
from tests.core.factories import vehicle
from tests.fuzz.mutations import mutated_bytes, mutated_tree
from tests.fuzz.settings import fuzz


def _rows() -> list[dict[str, Any]]:
    rows = []
    for serial in ("SM000101", "SM000102"):
        car = replace(vehicle(), vin=build_vin("WFK", "TA1CD", serial))
        car = replace(car, state=LifecycleState.BUILT, dealer_id=None)
        rows.append(json.loads(json.dumps(to_dict(car))))
    return rows


ROWS = _rows()
JSON_FEED = json.dumps(ROWS).encode()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    columns = [
        "vin",
        "model",
        "model_year",
        "plant",
        "build_date",
        "market",
        "option_codes",
        "ecus",
    ]
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "option_codes": " ".join(row["option_codes"]),
                         "ecus": json.dumps(row["ecus"])})  # fmt: skip
    return out.getvalue().encode()


CSV_FEED = _csv(ROWS)


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(sqlite_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def _stored(sessions: sessionmaker[Session]) -> dict[str, int]:
    """VIN -> number of ECU rows, for every stored car."""
    with sessions() as session:
        vins = session.scalars(select(VehicleRow.vin)).all()
        grouped = session.execute(select(EcuRow.vin, func.count()).group_by(EcuRow.vin))
        counts: dict[str, int] = {vin: n for vin, n in grouped}
    return {vin: counts.get(vin, 0) for vin in vins}


def _reset(sessions: sessionmaker[Session]) -> None:
    """Each example starts from the same registry: one car already imported, nothing else."""
    with sessions() as session, session.begin():
        session.execute(delete(EcuRow))
        session.execute(delete(VehicleRow))
    assert import_rows(sessions, [ROWS[0]]).created == 1


def _import(sessions: sessionmaker[Session], raw: bytes, media_type: str) -> None:
    _reset(sessions)
    before = _stored(sessions)
    try:
        rows = parse_feed(raw, media_type)
    except CloudProblem as problem:
        assert problem.status == 422 and problem.detail
        assert _stored(sessions) == before
        return
    with capture_logs() as logs:
        report = import_rows(sessions, rows)
    assert report.created + report.unchanged + len(report.errors) == len(rows)
    assert all(e.error and 1 <= e.row <= len(rows) for e in report.errors)
    after = _stored(sessions)
    assert len(after) == len(before) + report.created
    assert all(after[vin] == n for vin, n in before.items())  # nothing stored was touched
    failed = {e.row for e in report.errors}
    for vin in set(after) - set(before):
        (row,) = [
            r
            for n, r in enumerate(rows, start=1)
            if n not in failed and str(r.get("vin", "")).strip().upper() == vin
        ][:1]
        assert after[vin] == len(row["ecus"]), f"{vin}: half imported"
    assert [e for e in logs if e["event"] == "feed_imported"]


json_feeds = st.one_of(
    st.lists(st.sampled_from(ROWS).flatmap(mutated_tree), max_size=3).map(
        lambda rows: json.dumps(rows).encode()
    ),
    mutated_bytes(JSON_FEED),
)


@fuzz(150, fixtures=True)
@given(json_feeds)
def test_a_mutated_json_feed_is_a_problem_or_per_row_errors_and_rows_land_whole(
    sessions: sessionmaker[Session], raw: bytes
) -> None:
    _import(sessions, raw, "application/json")


@fuzz(150, fixtures=True)
@given(
    st.one_of(
        st.lists(st.sampled_from(ROWS).flatmap(mutated_tree), max_size=3).map(
            lambda rows: _csv([r for r in rows if isinstance(r, dict) and _csv_safe(r)])
        ),
        mutated_bytes(CSV_FEED),
    )
)
def test_a_mutated_csv_feed_is_a_problem_or_per_row_errors_and_rows_land_whole(
    sessions: sessionmaker[Session], raw: bytes
) -> None:
    _import(sessions, raw, "text/csv")


def _csv_safe(row: dict[str, Any]) -> bool:
    """Rows the CSV writer can write at all (it needs ``option_codes`` and ``ecus`` to exist)."""
    try:
        _csv([row])
    except (KeyError, TypeError, ValueError):
        return False
    return True
