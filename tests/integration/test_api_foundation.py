"""The request path every endpoint shares: body parsing, keys, the error envelope, the audit."""
from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from openalgo_gtt.app import create_app
from openalgo_gtt.gateway import Gateway
from openalgo_gtt.store.models import AuditRecord


def audit_rows(gateway):
    with gateway.sessions() as session:
        return session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()


def ping(client, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/v1/ping", data=data, content_type=content_type)


def test_json_sent_as_text_plain_is_accepted(client, api_key):
    response = ping(client, {"apikey": api_key}, content_type="text/plain")
    assert response.status_code == 200
    assert response.get_json()["data"] == {"broker": "sandbox", "message": "pong"}


def test_json_with_no_content_type_is_accepted(client, api_key):
    response = client.post("/api/v1/ping", data=json.dumps({"apikey": api_key}))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "raw,fragment",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('"apikey"', "must be a JSON object, not str"),
        ("42", "must be a JSON object, not int"),
        ("{not json", "not valid JSON"),
        ('{"apikey": "k", "price": NaN}', "NaN is not a valid number"),
        ('{"apikey": "k", "price": Infinity}', "Infinity is not a valid number"),
        (b"\xff\xfe{}", "UTF-8"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(client, raw, fragment):
    response = ping(client, raw, content_type="text/plain")
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "error"
    assert fragment in body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_a_body_over_one_mebibyte_is_a_413(client, gateway):
    response = ping(client, json.dumps({"apikey": "k", "pad": "x" * (1024 * 1024)}))
    assert response.status_code == 413
    assert response.get_json()["message"] == "Request body too large (limit 1 MiB)"
    (row,) = audit_rows(gateway)
    assert row.http_status == 413


@pytest.mark.parametrize("body", [{}, {"apikey": ""}, {"apikey": "wrong"}, {"apikey": None}, {"apikey": ["x"]}])
def test_wrong_or_missing_key_is_403_invalid_openalgo_apikey(client, body):
    response = ping(client, body)
    assert response.status_code == 403
    assert response.get_json() == {
        "status": "error",
        "message": "Invalid openalgo apikey",
        "request_id": response.headers["X-Request-ID"],
    }


def test_unknown_paths_and_methods_get_the_json_envelope(client):
    missing = client.post("/api/v1/nothing-here", data="{}")
    assert missing.status_code == 404 and missing.get_json()["status"] == "error"
    wrong_method = client.get("/api/v1/ping")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["status"] == "error"


def test_every_request_leaves_exactly_one_audit_row(client, gateway, api_key):
    ok = ping(client, {"apikey": api_key, "note": "hello"})
    bad = ping(client, {"apikey": "wrong"})
    junk = ping(client, "[]")
    rows = audit_rows(gateway)
    assert [r.request_id for r in rows] == [
        ok.headers["X-Request-ID"],
        bad.headers["X-Request-ID"],
        junk.headers["X-Request-ID"],
    ]
    first = rows[0]
    assert (first.endpoint, first.method, first.http_status, first.api_key_name) == ("/api/v1/ping", "POST", 200, "tester")
    assert first.request_body == {"apikey": "***", "note": "hello"}
    assert first.response_body["status"] == "success"
    assert first.latency_ms > 0
    assert rows[1].http_status == 403 and rows[1].api_key_name is None
    assert rows[1].error == "Invalid openalgo apikey"
    assert rows[2].http_status == 400


def test_health_is_not_audited(client, gateway):
    client.get("/api/health")
    assert audit_rows(gateway) == []


def test_the_key_never_reaches_the_database(client, gateway, api_key, database_url):
    ping(client, {"apikey": api_key, "nested": {"access_token": "tok-SECRET-123"}})
    ping(client, '{"apikey": "%s", broken' % api_key, content_type="text/plain")
    ping(client, {"apikey": api_key[:-1] + "0"})
    rows = audit_rows(gateway)
    assert len(rows) == 3
    assert rows[1].request_body["unparsed_body"].startswith('{"apikey": "***"')
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        gateway.engine.dispose()
        blob = b"".join(p.read_bytes() for p in Path(url.database).parent.glob("test.db*"))
        assert api_key.encode() not in blob
        assert api_key[:-1].encode() not in blob
        assert b"tok-SECRET-123" not in blob
        assert b"***" in blob  # the audit rows are there, redacted
    else:
        with gateway.engine.connect() as conn:
            dump = " ".join(str(row) for table in ("audit_log", "api_keys") for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
        assert api_key not in dump and api_key[:-1] not in dump
        assert "tok-SECRET-123" not in dump


def test_an_unexpected_exception_is_a_json_500_with_its_trace_in_the_audit(client, gateway, api_key, monkeypatch):
    def explode():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("openalgo_gtt.api.v1.caller_from_body", explode)
    response = ping(client, {"apikey": api_key})
    assert response.status_code == 500
    body = response.get_json()
    assert body["status"] == "error"
    assert "disk on fire" not in body["message"]  # no internals to the caller
    assert body["request_id"] == response.headers["X-Request-ID"]
    (row,) = audit_rows(gateway)
    assert row.http_status == 500
    assert "RuntimeError: disk on fire" in row.error
    assert "Traceback" in row.traceback and "explode" in row.traceback


def test_a_failing_audit_write_does_not_fail_the_request(client, gateway, api_key, monkeypatch):
    def broken_begin():
        raise OSError("audit store gone")

    monkeypatch.setattr(gateway.store.audit, "_engine", type("E", (), {"begin": staticmethod(broken_begin)})())
    assert ping(client, {"apikey": api_key}).status_code == 200


def test_health_reports_broker_trades_and_database(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["service"] == "openalgo-gtt"
    assert body["broker"] == "sandbox"
    assert body["today_trade_count"] == 0
    assert body["database"] == "ok"
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_health_is_503_when_the_database_is_unreachable(settings):
    down = dataclasses.replace(settings, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    gateway = Gateway.build(down)
    response = create_app(gateway=gateway).test_client().get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error" and body["database"] == "unreachable"
    assert "database unreachable" in body["message"]


def test_swagger_docs_describe_the_endpoints(client):
    assert client.get("/api/docs").status_code == 200
    spec = client.get("/api/swagger.json").get_json()
    assert "/v1/ping" in spec["paths"] and "/health" in spec["paths"]
