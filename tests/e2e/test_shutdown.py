"""Stopping `python run.py` as a service manager does (SIGTERM) or as a person does (Ctrl-C)."""
from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from sqlalchemy import create_engine

from openalgo_gtt.store.leases import DatabaseLease
from tests.waiting import until


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_server_exits_cleanly_and_hands_the_watcher_lease_back(server_factory, stop):
    server = server_factory(LOG_LEVEL="INFO").start()
    engine = create_engine(server.env["DATABASE_URL"])
    next_process = DatabaseLease(engine, "gtt-watcher", "the-next-process", ttl=timedelta(seconds=15))
    try:
        until(lambda: "holds the lease" in server.output(), "the server's watcher took the lease")
        assert not next_process.acquire()  # held by the running server

        server.process.send_signal(stop)
        assert server.process.wait(timeout=15) == 0
        # Released on the way out: the next process watches at once, not after the lease lapses.
        assert next_process.acquire()
        assert "openalgo-gtt stopped" in server.output() and "Traceback" not in server.output()
    finally:
        engine.dispose()
        server.stop()
