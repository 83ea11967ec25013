"""Throw-away databases for tests: a SQLite file, or a fresh database on the real PostgreSQL.

Each test gets its own PostgreSQL database (created from ``template0`` and dropped afterwards),
so tests never see each other's rows and can run while other suites use the same server. There is
no skip: when PostgreSQL cannot be reached the test fails, naming the server it tried.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_HOST = os.environ.get("FORECOURT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FORECOURT_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FORECOURT_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("FORECOURT_TEST_PG_DB", "test")


def _admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=PG_ADMIN_DB, autocommit=True
        )
    except psycopg.OperationalError as exc:  # pragma: no cover - the message is the point
        raise RuntimeError(
            f"PostgreSQL is required for this test and is not reachable at {PG_HOST}:{PG_PORT} "
            f"(database {PG_ADMIN_DB!r}); run scripts/ensure-postgres.sh: {exc}"
        ) from exc


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"forecourt_t_{uuid.uuid4().hex[:16]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
