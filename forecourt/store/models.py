"""Imports every table module so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from __future__ import annotations

import forecourt.store.edge  # noqa: F401
import forecourt.store.ledger  # noqa: F401
import forecourt.store.registry  # noqa: F401
