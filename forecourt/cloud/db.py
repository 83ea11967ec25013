"""The cloud's database: engine, migrations and one session per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from forecourt.store.engine import CLOUD_BRANCHES, create_engine_for, migrate, session_factory


class Database:
    """An engine and its session factory; ``migrate`` brings the registry and ledger up to head."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine: Engine = (
            create_engine_for(url, pool_size=20, max_overflow=20)
            if not (url.startswith("sqlite"))
            else create_engine_for(url)
        )
        if run_migrations:
            migrate(self.engine, CLOUD_BRANCHES)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
