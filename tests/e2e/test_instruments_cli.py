"""`python run.py instruments load` through the real command line, seen by a running server."""
from __future__ import annotations

import gzip
import json
import time

import requests


NEW_ROW = {"segment": "NSE_EQ", "name": "JOCIL LIMITED", "exchange": "NSE", "isin": "INE839G01010",
           "instrument_type": "EQ", "instrument_key": "NSE_EQ|INE839G01010", "lot_size": 1,
           "freeze_quantity": 100000.0, "exchange_token": "16927", "tick_size": 5.0, "trading_symbol": "JOCIL",
           "short_name": "JOCIL", "security_type": "NORMAL"}
FUTURE = {"weekly": False, "segment": "NSE_FO", "name": "NIFTY", "exchange": "NSE", "expiry": 1798538400000,
          "instrument_type": "FUT", "underlying_symbol": "NIFTY", "instrument_key": "NSE_FO|99001", "lot_size": 75,
          "exchange_token": "99001", "tick_size": 10.0, "trading_symbol": "NIFTY FUT 29 DEC 26"}


def test_load_a_gzip_master_and_the_running_server_sees_it(server_factory, tmp_path):
    server = server_factory(OCO_POLL_SECONDS="600")
    key = server.cli("apikey", "create", "loader").stdout.strip().splitlines()[-1]
    server.start()
    body = {"apikey": key, "exchange": "NSE", "symbol": "JOCIL", "action": "BUY", "quantity": 1,
            "trigger_type": "SINGLE", "triggerprice_tg": 200}
    assert requests.post(f"{server.url}/api/v1/placegtt", json=body, timeout=5).status_code == 404

    master = tmp_path / "complete.json.gz"
    master.write_bytes(gzip.compress(json.dumps([NEW_ROW, FUTURE]).encode()))
    out = server.cli("instruments", "load", str(master)).stdout
    assert "loaded 2 instruments" in out
    assert "NSE_EQ" in out and "NSE_FO" in out  # rows per segment

    broken = tmp_path / "broken.json"
    broken.write_text("[{not json")
    failed = server.cli("instruments", "load", str(broken), check=False)
    assert failed.returncode == 1 and "previous instrument set is unchanged" in failed.stderr

    # The server's index notices the new generation within its check interval (5 s).
    deadline, attempt = time.monotonic() + 8, 0
    while time.monotonic() < deadline:
        attempt += 1  # a new price each time: an identical body would be answered as a duplicate
        answer = requests.post(f"{server.url}/api/v1/placegtt", json={**body, "triggerprice_tg": 200 + attempt},
                               timeout=5)
        if answer.status_code != 404:
            break
        time.sleep(0.5)
    assert answer.status_code == 409, answer.text  # known now; the sandbox just has no price yet
    assert "push a tick" in answer.json()["message"]


def test_the_load_command_imports_neither_the_orm_nor_the_gateway(server_factory, tmp_path):
    """What keeps the command near the cost of reading the file (bench/bench_instruments.py):
    it writes two Core tables, so the ORM, the models and the gateway's services stay unloaded."""
    server = server_factory()
    server.cli("db", "upgrade")  # as on any day after the first: a fresh database runs Alembic first
    master = tmp_path / "complete.json"
    master.write_text(json.dumps([NEW_ROW, FUTURE]))
    server.env = {**server.env, "PYTHONPROFILEIMPORTTIME": "1"}  # every import, on stderr
    run = server.cli("instruments", "load", str(master))
    assert "loaded 2 instruments" in run.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "sqlalchemy" in imported and "openalgo_gtt.store.instruments.load" in imported  # the list is real
    unwanted = {"sqlalchemy.orm", "openalgo_gtt.store.models", "openalgo_gtt.gateway", "openalgo_gtt.services", "flask"}
    assert imported & unwanted == set()
