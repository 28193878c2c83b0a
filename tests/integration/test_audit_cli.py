"""`python run.py audit`: the audit trail newest first, filtered by endpoint, status, key name and
time, as text or one JSON object per line, and followed live; never a key or a token."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from openalgo_gtt.cli import cli
from openalgo_gtt.cli.audit_trail import audit_line, follow_audit, parse_when
from openalgo_gtt.domain.clock import IST
from openalgo_gtt.store.audit_log import recent_audit


@pytest.fixture
def trail(gateway, api_key, tmp_path, monkeypatch):
    """Four requests: a ping, a place refused (unknown symbol), a ping with a bad key, a ping."""
    from openalgo_gtt.app import create_app

    client = create_app(gateway=gateway).test_client()
    client.post("/api/v1/ping", json={"apikey": api_key})
    client.post("/api/v1/placegtt", json={"apikey": api_key, "symbol": "NOPE", "exchange": "NSE", "action": "BUY",
                                          "quantity": 1, "triggerprice_tg": 10})
    client.post("/api/v1/ping", json={"apikey": "not-a-key"})
    client.post("/api/v1/ping", json={"apikey": api_key})
    monkeypatch.chdir(tmp_path)
    return api_key


def run(settings, *args):
    env = {"DATABASE_URL": settings.database_url, "DATA_DIR": str(settings.data_dir), "BROKER": "sandbox",
           "API_KEY_PEPPER": settings.api_key_pepper}
    result = CliRunner().invoke(cli, ["audit", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_newest_first_and_no_secrets(settings, trail):
    out = run(settings).stdout.splitlines()
    assert len(out) == 4
    assert "/api/v1/ping" in out[0] and "/api/v1/placegtt" in out[2] and "key=tester" in out[0]
    assert "/api/v1/ping" in out[3]
    lines = run(settings, "--json").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert rows[2]["endpoint"] == "/api/v1/placegtt" and rows[2]["http_status"] == 404
    assert rows[2]["request"]["symbol"] == "NOPE"
    for text in (run(settings).stdout, run(settings, "--json").stdout):
        assert trail not in text and "not-a-key" not in text


def test_filters(settings, trail):
    def ids(*args):
        return [json.loads(line)["endpoint"] + str(json.loads(line)["http_status"])
                for line in run(settings, "--json", *args).stdout.splitlines()]

    assert ids("--endpoint", "placegtt") == ["/api/v1/placegtt404"]
    assert ids("--endpoint", "/api/v1/ping") == ["/api/v1/ping200", "/api/v1/ping403", "/api/v1/ping200"]
    assert ids("--endpoint", "gtt") == []  # the last part of the path, not any substring
    assert ids("--status", "4xx") == ["/api/v1/ping403", "/api/v1/placegtt404"]
    assert ids("--status", "error") == ids("--status", "4xx")
    assert ids("--status", "200") == ["/api/v1/ping200", "/api/v1/ping200"]
    assert len(ids("--key", "tester")) == 3 and ids("--key", "nobody") == []
    assert len(ids("--since", "1h")) == 4 and ids("--until", "1h") == []
    assert ids("--since", "2000-01-01", "--until", "2000-01-02") == []
    assert len(ids("-n", "2")) == 2
    result = CliRunner().invoke(cli, ["audit", "--status", "bad"], catch_exceptions=False)
    assert result.exit_code == 2 and "--status" in result.output


def test_times_are_ist_unless_a_zone_is_given():
    now = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
    assert parse_when("15m", now) == now - timedelta(minutes=15)
    assert parse_when("2026-12-02 09:15") == datetime(2026, 12, 2, 9, 15, tzinfo=IST)
    assert parse_when("2026-12-02T03:45:00+00:00") == datetime(2026, 12, 2, 3, 45, tzinfo=timezone.utc)


def test_follow_prints_new_rows_as_they_arrive(settings, trail, gateway):
    from openalgo_gtt.app import create_app

    client = create_app(gateway=gateway).test_client()
    last = recent_audit(gateway.engine, limit=1)[0].id
    printed = []

    def sleep(_seconds):
        if not printed:  # a request arrives while the command waits
            client.post("/api/v1/ping", json={"apikey": trail})
            client.post("/api/v1/gttorderbook", json={"apikey": trail})

    follow_audit(gateway.engine, {"endpoint": None, "status": None, "key": "tester", "since": None, "until": None},
                 last, printed.append, interval=0, sleep=sleep, polls=2)
    assert [row.endpoint for row in printed] == ["/api/v1/ping", "/api/v1/gttorderbook"]
    assert "/api/v1/gttorderbook" in audit_line(printed[1], as_json=False)
