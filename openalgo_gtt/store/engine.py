"""The engine: one per process, created once, never per request. SQLAlchemy Core only, so a
command that needs the database but no sessions (`instruments load`) does not import the ORM."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from openalgo_gtt.domain.encoding import dumps


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (order book, health) run while a place writes; busy_timeout makes
    # concurrent writers from several threads or processes wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=dumps,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(url, json_serializer=dumps, pool_pre_ping=True, pool_size=10, max_overflow=20)


def dialect_insert(engine: Engine):
    """The INSERT construct with ON CONFLICT for this engine's dialect (PostgreSQL or SQLite):
    the upserts of the trade counter, request records and leases are written once for both."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
