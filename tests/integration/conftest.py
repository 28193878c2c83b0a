"""Fixtures shared by several integration test files (the database, gateway and client
fixtures they build on are in tests/conftest.py). A file that means something else by one of
these names defines its own fixture of that name, which takes precedence in that file."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest


# ----- the sandbox broker on a real database (test_sandbox_broker.py, test_sandbox_paper.py) -----


class SettableClock:
    """The sandbox broker's clock: a moment the test moves by hand (`clock.now += ...`)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return SettableClock(datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc))  # 09:30 IST


@pytest.fixture
def sessions(db_engine):
    from openalgo_gtt.store.db import make_session_factory

    return make_session_factory(db_engine)


@pytest.fixture
def broker(sessions, clock):
    """A SandboxBroker on the test database, at `clock`'s time."""
    from openalgo_gtt.brokers.sandbox import SandboxBroker
    from openalgo_gtt.store.sandbox import SandboxRepository

    return SandboxBroker(SandboxRepository(sessions), clock=clock)


# ----- OpenAlgo's API through the Flask app on the sandbox (test_openalgo_parity.py, test_expires_at.py) -----


@pytest.fixture
def api(client, gateway, api_key):
    """`api(path, **body)`: a POST to /api/v1/<path> with the test's key, on the sandbox with the
    sample instruments and IDEA at 9.50; `api.client` is the Flask test client."""
    from openalgo_gtt.store.instruments import ensure_instruments

    ensure_instruments(gateway.engine)

    def send(path, **body):
        return client.post(f"/api/v1/{path}", data=json.dumps({"apikey": api_key, **body}),
                           content_type="application/json")

    assert send("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.5}]).status_code == 200
    send.client = client
    return send


# ----- a gateway on the fake Kite (test_kite_broker.py, test_openalgo_parity.py) -----


@pytest.fixture
def fake_kite():
    """A fake Kite HTTP server (tests/fakes/fake_kite.py) with INFY quoted."""
    from tests.fakes.fake_kite import FakeKite

    with FakeKite() as kite:
        kite.set_price("NSE:INFY", 1550, open=1540)
        yield kite


@pytest.fixture
def kite_gateway(settings, fake_kite):
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.instruments import load_master
    from openalgo_gtt.store.migrate import upgrade

    kite_settings = dataclasses.replace(settings, broker="kite", kite_api_url=fake_kite.url,
                                        kite_api_key=fake_kite.api_key, kite_access_token=fake_kite.access_token,
                                        kite_timeout=5.0)  # wall time: room on a loaded machine
    upgrade(kite_settings.database_url)
    built = Gateway.build(kite_settings)
    load_master(built.engine, f"{fake_kite.url}/instruments", broker="kite")
    yield built
    built.close()


@pytest.fixture
def kite_client(kite_gateway):
    """The Flask test client on the Kite gateway, and an API key."""
    from openalgo_gtt.app import create_app

    application = create_app(gateway=kite_gateway)
    application.config["TESTING"] = True
    return application.test_client(), kite_gateway.api_keys.create("tester")
