"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
TEST_DATABASE_URL is set (for example postgresql+psycopg://postgres@127.0.0.1:5432/test);
every test gets a fresh schema either way."""
from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from contextlib import contextmanager
from unittest import mock

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from openalgo_gtt.store.engine import make_engine
from openalgo_gtt.store.schema import metadata
from tests import closing_client
from tests.clock import OffsetClock

closing_client.install()  # responses close (and run the work after the answer) at once


@pytest.fixture(autouse=True)
def data_folder(monkeypatch, tmp_path_factory):
    """Every test its own data folder (config/home.py), never the user's: the process environment
    names it (CliRunner and the servers the tests start inherit it), and so does the platform's
    per-user folder for settings loaded from an explicit environment. Not created: a test that
    needs it made lets the code under test make it."""
    home = tmp_path_factory.getbasetemp() / f"gtt-home-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("OPENALGO_GTT_HOME", str(home))
    monkeypatch.setattr("openalgo_gtt.config.home.platform_home", lambda: home)
    return home


def _fresh_database_url(tmp_path) -> tuple[str, str | None]:
    """A URL for an empty database of the configured kind, and the PostgreSQL schema to drop after."""
    base_url = os.environ.get("TEST_DATABASE_URL")
    if not base_url:
        return f"sqlite:///{tmp_path / 'test.db'}", None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{schema}", schema


@pytest.fixture
def database_url(tmp_path):
    url, schema = _fresh_database_url(tmp_path)
    yield url
    if schema:
        admin = create_engine(os.environ["TEST_DATABASE_URL"])
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db_engine(database_url):
    """An Engine on a fresh schema with every table created."""
    engine = make_engine(database_url)  # the gateway's own (its JSON serialiser keeps Decimal prices)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


TEST_PEPPER = "test-pepper-" + "x" * 32


@pytest.fixture
def settings(database_url, tmp_path):
    from openalgo_gtt.config import Settings

    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        api_key_pepper=TEST_PEPPER,
        broker="sandbox",
        daily_trade_limit=5,
    )


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """One SQLite database upgraded by the real migrations, made once per test process: the
    in-process gateways below start from a copy of it (Alembic takes about half a second a
    database, a copy a millisecond). tests/integration/test_migrations.py still migrates empty
    databases, and every `python run.py` of the end-to-end tests migrates its own."""
    from openalgo_gtt.store.migrate import upgrade

    path = tmp_path_factory.mktemp("migrated") / "migrated.db"
    upgrade(f"sqlite:///{path}")  # Alembic's engine keeps SQLite's rollback journal: one file is all of it
    return path


def migrate(database_url: str, template) -> None:
    """Bring `database_url` to the newest migration: a new SQLite file as a copy of `template`
    (see migrated_sqlite), anything else by the migrations themselves; then `upgrade` as every
    start does (at the newest migration already, that is one query)."""
    from openalgo_gtt.store.migrate import upgrade

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database):
        shutil.copyfile(template, url.database)
    upgrade(database_url)


@contextmanager
def cheap_argon2():
    """API keys hashed with argon2id at its cheapest while a gateway is built: every test's key
    is otherwise two argon2 computations at the production cost (a third of a second each on a
    busy 2-core machine). The hashes are still argon2id and verified the same way; the cost
    itself, and what a wrong key costs, are tested with their own hashers
    (tests/integration/test_apikeys.py, test_api_key_hardening.py)."""
    from argon2 import PasswordHasher

    with mock.patch("openalgo_gtt.services.apikeys.PasswordHasher",
                    lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)):
        yield


@pytest.fixture
def gateway(settings, migrated_sqlite):
    """The service's long-lived parts on a database upgraded by the real migrations."""
    from openalgo_gtt.gateway import Gateway

    migrate(settings.database_url, migrated_sqlite)
    with cheap_argon2():
        built = Gateway.build(settings, clock=OffsetClock())
    yield built
    built.close()


@pytest.fixture
def app(gateway):
    from openalgo_gtt.app import create_app

    application = create_app(gateway=gateway)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_key(gateway):
    return gateway.api_keys.create("tester")


@pytest.fixture
def fake_upstox():
    """A fake Upstox HTTP server (see tests/fakes/fake_upstox.py), with IDEA and INFY quoted."""
    from tests.fakes.fake_upstox import FakeUpstox

    with FakeUpstox(token="fake-upstox-token") as fake:
        fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "9.50", open="10.00")
        fake.set_price("NSE_EQ|INE009A01021", "INFY", "NSE_EQ", "1550.00", open="1540.00")
        yield fake


@pytest.fixture
def upstox_timeout() -> float:
    """UPSTOX_TIMEOUT for the fake Upstox: the caller's whole budget for a place's broker calls
    (a quote and the place, say). It is wall time, and a loaded 2-core machine can stall a test
    process for over a second, so a budget this tests' calls must fit in is generous; a test of
    what a timeout does overrides this fixture with a short one (see test_exactly_once.py)."""
    return 5.0


@pytest.fixture
def upstox_gateway(settings, fake_upstox, migrated_sqlite, upstox_timeout):
    """A gateway driving the fake Upstox, on a migrated database with the sample master."""
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.instruments import ensure_instruments

    upstox_settings = dataclasses.replace(settings, 
        broker="upstox", upstox_api_url=fake_upstox.url, access_token=fake_upstox.token, upstox_timeout=upstox_timeout,
        settle_seconds=1.5,  # short, so a test can wait out the settling window (10 s by default)
        # Tests place faster than Upstox allows, and a place's budget is not for waiting on a
        # 10/second pacer; pacing has tests of its own (test_pacing, test_shared_pacing, ...).
        order_rate_limits="1000/second",
    )
    migrate(upstox_settings.database_url, migrated_sqlite)
    with cheap_argon2():
        built = Gateway.build(upstox_settings, clock=OffsetClock())
    ensure_instruments(built.engine)
    yield built
    built.close()


@pytest.fixture
def upstox_client(upstox_gateway):
    from openalgo_gtt.app import create_app

    application = create_app(gateway=upstox_gateway)
    application.config["TESTING"] = True
    return application.test_client()


@pytest.fixture
def upstox_key(upstox_gateway):
    return upstox_gateway.api_keys.create("tester")


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url():
    """The test Redis URL and a prefix for this test's keys; the keys are deleted after."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("OPENALGO_GTT_REQUIRE_REDIS") == "1":
            pytest.fail(f"no Redis at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield REDIS_URL, prefix, client
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)
    client.close()
