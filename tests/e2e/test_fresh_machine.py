"""A new user's first minutes, through the real command line and a real HTTP server."""
from __future__ import annotations

import time

import requests

from openalgo_gtt.services.apikeys import REVOCATION_CHECK_SECONDS


def test_run_py_serves_and_a_created_key_works_over_http(server_factory):
    server = server_factory()
    created = server.cli("apikey", "create", "tradingview")
    key = created.stdout.strip().splitlines()[-1]  # scripts capture the last line
    public_id, secret = key.split(".")  # <identifier>.<secret>
    assert len(public_id) == 16 and len(secret) == 64

    server.start()
    health = requests.get(f"{server.url}/api/health", timeout=5).json()
    assert health["status"] == "ok" and health["broker"] == "sandbox"

    # TradingView posts JSON as text/plain
    pong = requests.post(f"{server.url}/api/v1/ping", data=f'{{"apikey": "{key}"}}',
                         headers={"Content-Type": "text/plain"}, timeout=5)
    assert pong.status_code == 200 and pong.json()["status"] == "success"
    assert pong.headers["X-Request-ID"] == pong.json()["request_id"]

    listed = server.cli("apikey", "list").stdout
    assert "tradingview" in listed and key not in listed

    server.cli("apikey", "revoke", "tradingview")
    # A process re-reads a cached key's revocation at most once every REVOCATION_CHECK_SECONDS
    # (services/apikeys.py): a key revoked from another process stops working within that second.
    deadline = time.monotonic() + REVOCATION_CHECK_SECONDS + 4  # the rest: a slow machine's slack
    while (refused := requests.post(f"{server.url}/api/v1/ping", json={"apikey": key}, timeout=5)).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.05)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Invalid openalgo apikey"
    assert key not in server.output()  # never logged


def test_a_bad_setting_fails_with_one_line_and_no_traceback(server_factory):
    server = server_factory(PORT="not-a-port")
    result = server.cli("db", "upgrade", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: PORT='not-a-port': must be a whole number"
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands(server_factory):
    out = server_factory().cli("--help").stdout
    for command in ("serve", "apikey", "db"):
        assert command in out
