"""The edge Alembic branch builds the whole edge schema from empty, exactly as the models say."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import forecourt.store.models  # noqa: F401  (registers every table)
from forecourt.store.base import Base
from forecourt.store.engine import create_engine_for
from tests.edge.operators.conftest import migrate_edge

EDGE_TABLES = {
    "edge_operators",
    "edge_sessions",
    "edge_review_requests",
    "edge_activation_workflows",
    "edge_outbox",
    "edge_offline_packages",
    "edge_consent_records",
}


def test_edge_migration_from_empty_matches_the_models(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        migrate_edge(engine)
        assert set(inspect(engine).get_table_names()) >= EDGE_TABLES
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(ctx, Base.metadata)
        edge_diffs = [d for d in diffs if "'edge_" in repr(d)]  # edge tables, not registry_edge_*
        assert edge_diffs == []
        migrate_edge(engine)  # at head already: a second run changes nothing and does not fail
    finally:
        engine.dispose()
