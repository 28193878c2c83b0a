"""Issue 25, items 3, 5 and 6, through the real server on its database: what callers without a
valid key can do to the audit.

3. A flood of refused requests from one address grew the database by 15-17 MB in 10 s (every
   404 and 429 audited with its 4 KB body). Now each address has a budget of rows a minute and
   the rest are counted into one summary row; every request is still accounted for exactly once.
5. A valid key sent under another field name (`key`, `api-key`, `Authorization`, ...) was stored
   in clear in audit_log.request_body. Now any value of a key's shape is masked.
6. `POST /api/v1/ping%00` failed the audit insert on PostgreSQL (no row, a traceback per
   request). Now it is a 400 with its row, the NUL stored as its escape.
"""
from __future__ import annotations

import json
import secrets
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, select, text

from openalgo_gtt.store.models import AuditRecord

FLOOD_SECONDS = 10.0
THREADS = 8


def _rows(database_url) -> list:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditRecord.__table__)).mappings().all()
    engine.dispose()
    return [dict(r) for r in rows]


def _audit_bytes(database_url) -> int:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            size = conn.execute(text("SELECT pg_total_relation_size('audit_log')")).scalar_one()
        else:  # SQLite: the text of every row
            size = sum(len(json.dumps(r, default=str)) for r in conn.execute(select(AuditRecord.__table__)).mappings())
    engine.dispose()
    return size


def test_a_flood_of_refused_requests_from_one_address_costs_a_bounded_audit(server_factory, database_url):
    server = server_factory().start()
    before = _audit_bytes(database_url)
    stop, sent, lock = threading.Event(), [0], threading.Lock()

    def flood():
        with requests.Session() as http:
            while not stop.is_set():
                body = json.dumps({"apikey": secrets.token_hex(8), "junk": secrets.token_hex(2048)})  # 4 KB
                http.post(f"{server.url}/api/v1/no-such-route", data=body, headers={"Content-Type": "text/plain"},
                          timeout=10)
                with lock:
                    sent[0] += 1

    threads = [threading.Thread(target=flood) for _ in range(THREADS)]
    [t.start() for t in threads]
    time.sleep(FLOOD_SECONDS)
    stop.set()
    [t.join(timeout=15) for t in threads]
    server.stop()  # a stopping server writes the summaries of the minute under way
    grown = _audit_bytes(database_url) - before
    rows = _rows(database_url)
    summaries = [r for r in rows if r["endpoint"] == "(summary)"]
    one_by_one = [r for r in rows if r["endpoint"] != "(summary)"]
    counted = len(one_by_one) + sum(r["request_body"]["summary"]["requests"] for r in summaries)
    print(f"\n{sent[0]} refused requests in {FLOOD_SECONDS:.0f} s: {len(one_by_one)} rows one by one, "
          f"{len(summaries)} summary rows; the audit grew {grown / 1024:.0f} KiB ({grown / sent[0]:.0f} B a request)")
    assert sent[0] > 1000
    assert counted == sent[0]  # exactly one record accounts for every request
    assert grown < 1024 * 1024
    assert all(r["client_addr"] == "127.0.0.1" for r in summaries) and summaries
    assert "more requests without a valid key from 127.0.0.1" in summaries[0]["error"]


def test_a_key_under_any_field_name_or_inside_any_text_never_reaches_the_audit(server_factory, database_url):
    server = server_factory()
    key = server.cli("apikey", "create", "trader").stdout.strip().splitlines()[-1]
    legacy = secrets.token_hex(32)  # the shape of an old key
    server.start()
    bodies = [{name: key} for name in ("key", "api-key", "openalgo_apikey", "x_api_key", "Authorization", "auth",
                                       "credentials", "apikey ", "symbol")]
    bodies += [{"apikey": "wrong", "note": f"my key is {key}, keep it"}, {"orders": [{"meta": [key]}]},
               {key: "as a field name"}, {"Authorization": f"Bearer {key}"}, {"symbol": legacy}]
    ids = []
    for body in bodies:
        answer = requests.post(f"{server.url}/api/v1/ping", json=body, timeout=10)
        assert answer.status_code in (400, 403), answer.text
        ids.append(answer.headers["X-Request-ID"])
    answer = requests.get(f"{server.url}/upstox/login", params={"api-key": key, "x": f"k={key}"}, timeout=10)
    ids.append(answer.headers["X-Request-ID"])
    stored = json.dumps(_rows(database_url), default=str)
    assert all(i in stored for i in ids)
    secret = key.split(".", 1)[1]
    assert key not in stored and secret not in stored and legacy not in stored
    assert stored.count("***") >= len(bodies)


@pytest.mark.parametrize("path", ["/api/v1/ping%00", "/api/v1/pi%00ng?x=1", "/api/v1/ping%ED%A0%80"])
def test_a_nul_or_a_lone_surrogate_in_the_path_is_a_clean_refusal_with_its_audit_row(server_factory, database_url, path):
    server = server_factory().start()
    log_before = len(server.output())
    ids = []
    for _ in range(15):  # under the audit budget of an address: each gets a row of its own
        answer = requests.post(f"{server.url}{path}", data=b'{"apikey": "x\\u0000y"}', timeout=10)
        assert answer.status_code in (400, 403, 404) and answer.json()["status"] == "error"
        ids.append(answer.headers["X-Request-ID"])
    rows = {r["request_id"]: r for r in _rows(database_url)}
    assert all(i in rows for i in ids)  # every request has its row
    assert "\x00" not in json.dumps([r["endpoint"] for r in rows.values()])
    log = server.output()[log_before:]
    assert "Traceback" not in log and len(log) < 2000, log[:3000]
