"""The audit trail under attack: anonymous bodies are bounded, text that could not be parsed is
masked before it is cut, query-string secrets are masked, old rows are purged, and the table's
size is reported by /api/health."""
from __future__ import annotations

import dataclasses
import json
import re
import secrets
import threading
import uuid
from datetime import timedelta

import pytest

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.gateway import Gateway
from openalgo_gtt.services.audit import UNAUTHENTICATED_BODY_BYTES, AuditRetention
from tests.integration.secured_app import audit_rows, secured_app

MIB = 1024 * 1024


def _post(client, raw: str | bytes):
    return client.post("/api/v1/ping", data=raw, content_type="application/json")


def _stored_size(row) -> int:
    return len(json.dumps(row.request_body).encode())


def _assert_cut(row, original_bytes: int):
    """Cut and marked; `original_bytes` is the size before the cut (of a body that parsed, its
    JSON form: a few bytes off the raw size)."""
    body = row.request_body
    assert set(body) == {"unparsed_body", "truncated", "original_bytes"}
    assert body["truncated"] is True and abs(body["original_bytes"] - original_bytes) < 100
    assert len(body["unparsed_body"].encode()) <= UNAUTHENTICATED_BODY_BYTES
    assert _stored_size(row) < UNAUTHENTICATED_BODY_BYTES + 100


# -- anonymous bodies are bounded ----------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong", "0" * 16 + "." + "0" * 64])
def test_a_request_without_a_valid_key_keeps_at_most_4_kib_of_its_body(client, gateway, key):
    raw = json.dumps({"apikey": key, "pad": "x" * (MIB - 200)})
    responses = [_post(client, raw) for _ in range(3)]
    assert {r.status_code for r in responses} == {403}
    rows = audit_rows(gateway)
    assert len(rows) == 3
    for row in rows:
        assert row.api_key_name is None
        _assert_cut(row, len(raw))
        assert row.request_body["unparsed_body"].startswith('{"apikey":')


def test_a_small_anonymous_body_is_kept_parsed(client, gateway):
    assert _post(client, json.dumps({"apikey": "wrong", "note": "hello"})).status_code == 403
    (row,) = audit_rows(gateway)
    assert row.request_body == {"apikey": "***", "note": "hello"}


def test_a_caller_with_a_valid_key_keeps_its_whole_body(client, gateway, api_key):
    note = "n" * 20_000
    assert _post(client, json.dumps({"apikey": api_key, "note": note})).status_code == 200
    (row,) = audit_rows(gateway)
    assert row.request_body == {"apikey": "***", "note": note}


def test_throttled_wrong_keys_keep_at_most_4_kib_each(settings, gateway):
    raw = json.dumps({"apikey": "wrong", "pad": "x" * (MIB - 200)})
    with secured_app(settings, failed_key_limit="1 per minute") as app:
        client = app.test_client()
        statuses = [_post(client, raw).status_code for _ in range(4)]
        assert statuses[0] == 403 and statuses[1:] == [429, 429, 429]
        rows = audit_rows(gateway)
        assert [r.http_status for r in rows] == statuses
        for row in rows:
            _assert_cut(row, len(raw))


def test_an_anonymous_get_keeps_at_most_4_kib_of_its_query(client, gateway):
    client.get("/api/gtt/orders", query_string={"pad": "y" * 20_000})
    (row,) = audit_rows(gateway)
    assert row.api_key_name is None
    assert len(json.dumps(row.request_body).encode()) < UNAUTHENTICATED_BODY_BYTES + 100
    assert row.request_body["truncated"] is True


# -- text that could not be parsed is masked before it is cut --------------------------------------


def _new_format_key() -> str:
    return f"{secrets.token_hex(8)}.{secrets.token_hex(32)}"


@pytest.mark.parametrize("make_key", [_new_format_key, lambda: secrets.token_hex(32)], ids=["new", "legacy"])
@pytest.mark.parametrize("kept", [7, 16, 23, 40])
def test_a_key_cut_at_4096_characters_leaves_no_piece_of_itself(client, gateway, api_key, make_key, kept):
    """The key under a field name that is not secret, in broken JSON longer than 4 KiB, placed
    so the cut at 4,096 characters falls `kept` characters into it."""
    key = make_key()
    head = '{"note": "'
    pad = "p" * (UNAUTHENTICATED_BODY_BYTES - len(head) - kept)
    raw = head + pad + key + '", broken' + "q" * 5000
    assert raw.index(key) + kept == UNAUTHENTICATED_BODY_BYTES
    assert _post(client, raw).status_code == 400
    (row,) = audit_rows(gateway)
    stored = row.request_body["unparsed_body"]
    assert row.request_body["truncated"] is True
    assert not re.search(r"[0-9a-f]{5,}", stored), stored[-80:]
    assert key[:5] not in stored


def test_secret_fields_in_broken_json_are_masked_whatever_their_shape(client, gateway, api_key):
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQifQ.c2lnbmF0dXJlLXBhcnQ"
    raw = ('{"APIKEY":"%s", "token": "tok-plain-1", "password":\'hunter2\', "Secret" : bare-secret-9, '
           '"access_token": "%s", "auth": "Bearer bearer-tok-77", "note": "%s", broken'
           % (api_key, jwt, jwt))
    assert _post(client, raw).status_code == 400
    (row,) = audit_rows(gateway)
    stored = row.request_body["unparsed_body"]
    for secret in (api_key, api_key[:16], "tok-plain-1", "hunter2", "bare-secret-9", jwt, "eyJzdWIiOiJBQjEyMzQifQ",
                   "bearer-tok-77"):
        assert secret not in stored, secret
    assert stored.startswith('{"APIKEY":"***", "token": "***", "password":\'***\'')
    assert "broken" in stored and "truncated" not in row.request_body  # short: kept whole, masked


def test_an_unparsed_body_is_cut_to_4_kib_even_with_a_valid_key_elsewhere(client, gateway, api_key):
    raw = b"\xff" + b"z" * 10_000  # not UTF-8: unparsed whatever the caller
    assert _post(client, raw).status_code == 400
    (row,) = audit_rows(gateway)
    _assert_cut(row, len(raw))


# -- query-string secrets on GET routes -----------------------------------------------------------


def test_query_string_secrets_are_masked_on_every_get_route(client, gateway, api_key):
    hex_secret = secrets.token_hex(20)
    client.get("/api/gtt/orders", query_string={"apikey": api_key, "code": "one-time-code",
                                                 "state": "csrf-state", "ref": hex_secret, "page": "2"})
    (row,) = audit_rows(gateway)
    assert row.request_body == {"apikey": "***", "code": "***", "state": "***", "ref": "***", "page": "2"}


# -- retention ------------------------------------------------------------------------------------


def _write_row(gateway, age: timedelta) -> str:
    request_id = str(uuid.uuid4())
    assert gateway.store.audit.write(AuditEntry(
        request_id=request_id, created_at=utcnow() - age, method="POST", endpoint="/api/v1/ping",
        client_addr="127.0.0.1", api_key_name=None, request_body=None, response_body=None, http_status=403,
        latency_ms=1.0))
    return request_id


class _Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now


def test_retention_purges_old_rows_in_bounded_batches_at_most_once_an_hour(gateway):
    old = [_write_row(gateway, timedelta(days=91, minutes=i)) for i in range(7)]
    recent = [_write_row(gateway, timedelta(days=89)), _write_row(gateway, timedelta(minutes=1))]
    clock = _Clock()
    retention = AuditRetention(gateway.store.audit, 90, batch=2, max_batches=2, clock=clock)

    assert retention.run() == 4  # the cap: two batches of two
    assert retention.run() == 3  # stopped at the cap, so the next poll goes on at once
    assert {r.request_id for r in audit_rows(gateway)} == set(recent)

    late = _write_row(gateway, timedelta(days=100))
    clock.now += timedelta(minutes=59)
    assert retention.run() == 0  # within the hour: no work
    clock.now += timedelta(minutes=2)
    assert retention.run() == 1
    assert late not in {r.request_id for r in audit_rows(gateway)} and old


def test_retention_zero_keeps_every_row(gateway):
    _write_row(gateway, timedelta(days=3650))
    assert AuditRetention(gateway.store.audit, 0).run() == 0
    assert len(audit_rows(gateway)) == 1


def test_the_watcher_purges_on_its_poll(settings):
    from openalgo_gtt.store.migrate import upgrade

    upgrade(settings.database_url)
    gateway = Gateway.build(dataclasses.replace(settings, audit_retention_days=30, oco_poll_seconds=0.05))
    try:
        old = _write_row(gateway, timedelta(days=31))
        kept = _write_row(gateway, timedelta(days=29))
        purged = threading.Event()
        jobs = list(gateway.watcher._housekeeping)

        def observed():
            for job in jobs:
                job()
            purged.set()

        gateway.watcher._housekeeping = [observed]
        gateway.watcher.start()
        assert purged.wait(10), "the watcher's poll never ran its housekeeping"
        assert [r.request_id for r in audit_rows(gateway)] == [kept] and old
    finally:
        gateway.close()


def test_a_failing_purge_does_not_stop_the_watcher(gateway, caplog):
    def broken():
        raise OSError("disk gone")

    gateway.watcher._housekeeping = [broken]
    gateway.watcher.housekeep()  # logged, not raised
    assert "housekeeping failed" in caplog.text


# -- health ---------------------------------------------------------------------------------------


def test_health_reports_the_audit_tables_size_and_oldest_row(client, gateway):
    empty = client.get("/api/health").get_json()
    assert (empty["audit_rows"], empty["audit_oldest_at"], empty["audit_retention_days"]) == (0, None, 90)
    _write_row(gateway, timedelta(days=5))
    _write_row(gateway, timedelta(days=1))
    body = client.get("/api/health").get_json()
    assert body["audit_rows"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["audit_oldest_at"])
