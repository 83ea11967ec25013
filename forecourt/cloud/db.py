"""The cloud's database: engine, migrations, sessions, and single-statement reads.

Round trips are what an authorisation waits on, so the engine is set up not to add any:

* no ``pool_pre_ping`` (a ``SELECT 1`` before every checkout). A connection the server dropped is
  detected by the statement that fails on it; SQLAlchemy then invalidates the whole pool, and the
  edge's retry (same request id, so idempotent) runs on a fresh connection. ``pool_recycle``
  retires connections before typical idle timeouts of proxies and servers close them.
* :meth:`Database.read` runs a single SELECT on an autocommit connection: a statement that needs
  no transaction is sent without ``BEGIN`` and ``ROLLBACK`` around it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from forecourt.store.engine import CLOUD_BRANCHES, create_engine_for, migrate, session_factory

#: Seconds after which a pooled connection is replaced rather than reused.
POOL_RECYCLE_S = 1800


class Database:
    """An engine and its session factory; ``migrate`` brings the registry and ledger up to head."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine: Engine = (
            create_engine_for(
                url,
                pool_size=20,
                max_overflow=20,
                pool_pre_ping=False,
                pool_recycle=POOL_RECYCLE_S,
            )
            if not (url.startswith("sqlite"))
            else create_engine_for(url)
        )
        if run_migrations:
            migrate(self.engine, CLOUD_BRANCHES)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for one read-only statement, outside any transaction (autocommit)."""
        with self._autocommit.connect() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
