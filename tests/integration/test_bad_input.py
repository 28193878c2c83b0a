"""Bad input the security layer refuses before any view: NUL characters, which PostgreSQL cannot
store in text (found by tests/e2e/test_schemathesis.py: a NUL trigger_id was a 500 there)."""
from __future__ import annotations

import json

import pytest

from openalgo_gtt.api.security import NUL_REFUSED, SURROGATE_REFUSED
from tests.integration.secured_app import audit_rows, secured_app


@pytest.fixture
def client(settings, gateway):
    with secured_app(settings) as app:
        yield app.test_client()


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/cancelgtt", {"trigger_id": "GTT-\u00001"}),
        ("/api/v1/gttorderstatus", {"trigger_id": "\u0000"}),
        ("/api/v1/placegtt", {"symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": 1,
                              "triggerprice_tg": 10, "strategy": "s\u0000"}),
        ("/api/v1/sandbox/ticks", {"ticks": [{"symbol": "IDEA", "exchange": "NSE", "ltp": 1, "note": ["\u0000"]}]}),
        ("/api/v1/ping", {"\u0000": 1}),
        ("/api/gtt/cancel", {"gtt_id": "a\u0000"}),
    ],
)
def test_a_nul_anywhere_in_the_body_is_a_400_with_one_audit_row(client, gateway, api_key, path, body):
    response = client.post(path, data=json.dumps({"apikey": api_key, **body}))
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["message"] == NUL_REFUSED and answer["status"] == "error"
    (row,) = audit_rows(gateway)
    assert (row.http_status, row.error, row.request_id) == (400, NUL_REFUSED, response.headers["X-Request-ID"])


def test_a_nul_in_the_query_is_a_400(client, gateway, api_key):
    response = client.get("/api/gtt/cancel", query_string={"gtt_id": "GTT-\u00001"}, headers={"X-API-KEY": api_key})
    assert response.status_code == 400 and response.get_json()["message"] == NUL_REFUSED
    assert len(audit_rows(gateway)) == 1


def test_ordinary_unicode_and_control_free_text_passes(client, api_key):
    response = client.post("/api/v1/ping", data=json.dumps({"apikey": api_key, "note": "नमस्ते \t ✓"}))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/placegtt", {"symbol": "IDEA\ud800", "exchange": "NSE", "action": "BUY", "quantity": 1,
                              "triggerprice_tg": 10}),
        ("/api/v1/placegtt", {"symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": 1,
                              "triggerprice_tg": 10, "idempotency_key": "k\udfff"}),
        ("/api/v1/cancelgtt", {"trigger_id": "GTT-\udc001"}),
        ("/api/v1/modifygtt", {"trigger_id": "GTT-1", "strategy": ["\ud83d"]}),
        ("/api/v1/ping", {"\ud800": 1}),
        ("/api/gtt/place", {"instrument": "NSE_EQ|\ud800"}),
    ],
)
def test_a_lone_surrogate_outside_the_key_is_a_400_with_one_audit_row(client, gateway, api_key, path, body):
    """JSON allows a lone surrogate; UTF-8, and so PostgreSQL, cannot store one."""
    response = client.post(path, data=json.dumps({"apikey": api_key, **body}))
    assert response.status_code == 400
    assert response.get_json()["message"] == SURROGATE_REFUSED
    (row,) = audit_rows(gateway)
    assert (row.http_status, row.error) == (400, SURROGATE_REFUSED)


def test_a_lone_surrogate_as_the_key_is_a_wrong_key_and_a_pair_is_ordinary_text(client, api_key):
    assert client.post("/api/v1/ping", data=json.dumps({"apikey": "\ud800"})).status_code == 403
    assert client.post("/api/v1/ping", data=json.dumps({"apikey": api_key, "note": "\ud83d\ude00"})).status_code == 200
