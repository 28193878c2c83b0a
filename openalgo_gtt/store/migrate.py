"""Run Alembic migrations from code (`python run.py` and `python run.py db upgrade`).

A database already at the newest migration is the common case (every start, every `instruments
load`), so it is recognised with one query, without importing Alembic or reading the migration
scripts; `SCHEMA_HEAD` names that migration (tests/integration/test_migrations.py checks it
against Alembic's own idea of the head, so a new migration cannot be forgotten here).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SCHEMA_HEAD = "0019"


def alembic_config(database_url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    if revision == "head" and current_revision(database_url) == SCHEMA_HEAD:
        return
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # a new data folder
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def schema_present(database_url: str) -> bool:
    """Whether the database holds the gateway's tables (Alembic has run on it). A database that
    cannot be reached raises (OperationalError), so it is never taken for an empty one."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table("alembic_version")
    finally:
        engine.dispose()


def current_revision(database_url: str) -> str | None:
    """The migration the database is at, or None (a new database, or one Alembic never ran on)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
