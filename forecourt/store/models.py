"""Imports every table module so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from __future__ import annotations

from forecourt.store import edge, ledger, registry

__all__ = ["edge", "ledger", "registry"]
