"""Engines, sessions and migrations for SQLite and PostgreSQL.

SQLite is opened in WAL mode with foreign keys on and a busy timeout, so that the edge's web
console, workflows and sync can share one file without "database is locked" errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: Alembic branches each part of the product needs.
CLOUD_BRANCHES: tuple[str, ...] = ("registry", "ledger")
EDGE_BRANCHES: tuple[str, ...] = ("edge", "ledger")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings each backend needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(
    engine: Engine,
    branches: Iterable[str] = CLOUD_BRANCHES,
    attributes: Mapping[str, object] | None = None,
) -> None:
    """Bring the database up to the head of each named Alembic branch (from empty if need be).

    ``attributes`` reach the migrations through ``config.attributes`` (keys a data migration
    needs, such as the edge's TOTP key; never written anywhere).
    """
    cfg = alembic_config(engine)
    cfg.attributes.update(attributes or {})
    for branch in branches:
        command.upgrade(cfg, f"{branch}@head")
