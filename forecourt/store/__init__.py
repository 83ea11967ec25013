"""Storage: SQLAlchemy 2 models and repositories, Alembic migrations.

SQLite (WAL, one file) is the embedded default for the edge and the demo; PostgreSQL is the
cloud's production database. The same repositories and the same migrations serve both, and the
storage tests run against both.

Tables are grouped by area in their own modules (``registry``, ``ledger``, ``edge`` ...), all on
one declarative :class:`~forecourt.store.base.Base`. Each area has its own Alembic branch
(``branch_labels``) so a database gets exactly the areas it needs: the cloud upgrades
``registry@head`` and ``ledger@head``, the edge ``edge@head`` and ``ledger@head``.
"""

from forecourt.store.base import Base
from forecourt.store.engine import create_engine_for, migrate, session_factory

__all__ = ["Base", "create_engine_for", "migrate", "session_factory"]
