"""The Alembic migrations build exactly the schema the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from openalgo_gtt.store.migrate import upgrade
from openalgo_gtt.store.schema import metadata


def test_upgrade_builds_the_models_schema_and_is_repeatable(database_url):
    upgrade(database_url)
    upgrade(database_url)  # a second run (every start does one) changes nothing
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_the_fast_path_knows_the_newest_migration_and_a_stale_database_is_still_upgraded(database_url):
    from alembic.script import ScriptDirectory

    from openalgo_gtt.store.migrate import SCHEMA_HEAD, alembic_config, current_revision

    assert ScriptDirectory.from_config(alembic_config(database_url)).get_current_head() == SCHEMA_HEAD
    assert current_revision(database_url) is None  # a new database
    upgrade(database_url, "0007")
    assert current_revision(database_url) == "0007"
    upgrade(database_url)  # one migration behind: Alembic runs, the fast path does not skip it
    assert current_revision(database_url) == SCHEMA_HEAD
