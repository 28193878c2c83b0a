"""A new user's first minutes, through the real command line and a real HTTP server."""
from __future__ import annotations

import subprocess
import sys
import time

import requests

from openalgo_gtt.services.apikeys import REVOCATION_CHECK_SECONDS
from tests.e2e.server import RUN_PY


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


def test_run_from_any_folder_serves_one_database_and_a_key_made_elsewhere_works(server_factory, tmp_path):
    """Issue 26: the quick start, with no DATABASE_URL: the server started in one folder and a key
    made in another share the data folder (OPENALGO_GTT_HOME here, the per-user folder by default),
    and the server says where that is when it starts."""
    home = tmp_path / "home"
    server = server_factory(OPENALGO_GTT_HOME=str(home), LOG_LEVEL="INFO")
    del server.env["DATABASE_URL"], server.env["API_KEY_PEPPER"]
    server.prepare_store = False  # as a user's: nothing is made for the commands
    refused = server.cli("apikey", "create", "too-early", check=False)
    assert refused.returncode == 1 and str(home / "openalgo_gtt.db") in refused.stderr
    assert "Traceback" not in refused.stderr and not home.exists()

    server.start()
    assert f"data folder: {home} " in server.output()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    created = subprocess.run([sys.executable, str(RUN_PY), "apikey", "create", "tradingview"], cwd=elsewhere,
                             env=server.env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    pong = requests.post(f"{server.url}/api/v1/ping", json={"apikey": key}, timeout=5)
    assert pong.status_code == 200, pong.text
    assert not (elsewhere / "data").exists() and not (server.workdir / "data").exists()


def test_a_second_server_on_a_busy_port_is_one_line_and_a_non_zero_exit(server_factory):
    first = server_factory().start()
    second = server_factory(PORT=str(first.port))
    second.create_store()
    result = subprocess.run([sys.executable, str(RUN_PY)], cwd=second.workdir, env=second.env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: port {first.port} is already in use on 127.0.0.1 (Address already in use): "
                           "another server, perhaps openalgo-gtt, is running there; stop it, or set PORT to a "
                           "free port"]
    assert "Traceback" not in result.stderr and "serving on" not in (result.stdout + result.stderr)
