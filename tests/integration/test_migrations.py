"""The Alembic migrations build exactly the schema the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from openalgo_gtt.store.migrate import upgrade
from openalgo_gtt.store.models import Base


def test_upgrade_builds_the_models_schema_and_is_repeatable(database_url):
    upgrade(database_url)
    upgrade(database_url)  # a second run (every start does one) changes nothing
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
