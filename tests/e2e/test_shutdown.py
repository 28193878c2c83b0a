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


def test_a_stopped_gunicorn_worker_hands_the_watcher_lease_back(tmp_path):
    import subprocess
    import sys

    from tests.e2e.server import REPO, ServerProcess

    database_url = f"sqlite:///{tmp_path / 'gunicorn.db'}"
    helper = ServerProcess(tmp_path, database_url, LOG_LEVEL="INFO", WEB_CONCURRENCY="1")
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"),
                                    "openalgo_gtt.wsgi:app"], cwd=tmp_path, env=helper.env, stdout=out,
                                   stderr=subprocess.STDOUT)
    engine = create_engine(database_url)
    next_process = DatabaseLease(engine, "gtt-watcher", "the-next-process", ttl=timedelta(seconds=15))
    try:
        until(lambda: "holds the lease" in log.read_text(errors="replace"), "the worker's watcher took the lease")
        assert not next_process.acquire()
        process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        assert process.wait(timeout=30) == 0
        assert next_process.acquire()  # handed back by worker_exit, not left to lapse
        assert "Traceback" not in log.read_text(errors="replace")
    finally:
        engine.dispose()
        if process.poll() is None:
            process.kill()
