"""The registry migration on SQLite and PostgreSQL: matches the models, and the open-VIN rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.exc import IntegrityError

from forecourt.store.base import Base
from forecourt.store.engine import CLOUD_BRANCHES, create_engine_for, migrate, session_factory
from forecourt.store.registry import ActivationRow

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _registry_metadata() -> MetaData:
    import forecourt.store.models  # noqa: F401

    md = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        if table.name.startswith("registry_"):
            table.to_metadata(md)
    return md


def test_registry_migration_matches_the_models(db_url: str) -> None:
    engine = create_engine_for(db_url)
    migrate(engine, CLOUD_BRANCHES)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = [
            d
            for d in compare_metadata(context, _registry_metadata())
            if not (d[0] == "remove_table" or (d[0] == "remove_index"))
        ]
    engine.dispose()
    assert diff == []


def _activation(request_id: str, open_vin: str | None) -> ActivationRow:
    return ActivationRow(
        request_id=request_id,
        request_digest="0" * 64,
        vin="WFKTW3S88RM000001",
        open_vin=open_vin,
        dealer_id="DE-MUC-01",
        operator_id="op",
        status="issued",
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )


def test_only_one_open_activation_per_vin_but_any_number_closed(db_url: str) -> None:
    engine = create_engine_for(db_url)
    migrate(engine, CLOUD_BRANCHES)
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        session.add_all([_activation("closed-1", None), _activation("closed-2", None)])
        session.add(_activation("open-1", "WFKTW3S88RM000001"))
    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.add(_activation("open-2", "WFKTW3S88RM000001"))
    with sessions() as session:
        assert session.query(ActivationRow).count() == 3
    engine.dispose()
