"""Bad input the security layer refuses before any view: NUL characters, which PostgreSQL cannot
store in text (found by tests/e2e/test_schemathesis.py: a NUL trigger_id was a 500 there)."""
from __future__ import annotations

import json

import pytest

from openalgo_gtt.api.security import NUL_REFUSED
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
