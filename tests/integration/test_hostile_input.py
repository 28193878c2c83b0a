"""Hostile input, refused as classes (a security pass): every case is a JSON error with the right
status, reaches no broker, never a 500 or a traceback, and leaves exactly one audit row.

1. Nesting: a body nested deeper than body.MAX_DEPTH (32) on any route is a 400 naming the limit.

Against the fake Upstox, so `fake_upstox.calls` shows whether anything reached the broker.
"""
from __future__ import annotations

import json
import logging

import pytest

from openalgo_gtt.api import body as body_module
from openalgo_gtt.api.body import MAX_DEPTH
from openalgo_gtt.api.security import contains_nul
from tests.integration.secured_app import audit_rows

IDEA = "NSE_EQ|INE669E01016"
SINGLE_BUY = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "triggerprice_tg": 9.55}
SEED_QUERY = {"instrument": IDEA, "qty": "1", "transaction_type": "BUY"}


def nested(levels: int) -> str:
    """`levels` arrays inside each other, as JSON text."""
    return "[" * levels + "]" * levels


def assert_refused(response, gateway, fake_upstox, status: int, *fragments: str) -> dict:
    """`response` is the JSON error `status` naming `fragments`, nothing reached the broker, and
    the request left exactly one audit row (the newest)."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "error" and body["request_id"] == response.headers["X-Request-ID"]
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert fake_upstox.calls == []
    rows = [row for row in audit_rows(gateway) if row.request_id == body["request_id"]]
    assert [(row.http_status, row.traceback) for row in rows] == [(status, None)]
    return body


def body_routes(gateway) -> list[str]:
    return [
        "/api/v1/ping", "/api/v1/placegtt", "/api/v1/placegttorder", "/api/v1/modifygtt",
        "/api/v1/modifygttorder", "/api/v1/cancelgtt", "/api/v1/cancelgttorder", "/api/v1/gttorderbook",
        "/api/v1/gttorderstatus", "/api/v1/sandbox/ticks", "/api/gtt/place", "/api/gtt/cancel",
        f"/upstox/postback/{gateway.webhook_secret}", "/upstox/token-request",
        "/upstox/notifier/not-the-secret",
    ]


# -- 1. nesting depth ---------------------------------------------------------------------------

BODY_ROUTES = 15


@pytest.mark.parametrize("route", range(BODY_ROUTES))
def test_a_deeply_nested_body_is_a_400_naming_the_limit_on_every_route(
        upstox_client, upstox_gateway, upstox_key, fake_upstox, caplog, route):
    path = body_routes(upstox_gateway)[route]
    for keyed in (True, False):
        for content_type in ("application/json", "text/plain"):
            key = f'"apikey": "{upstox_key}", ' if keyed else ""
            raw = '{%s"gtt_id": "1", "trigger_id": "1", "x": %s}' % (key, nested(600))
            headers = {"X-API-KEY": upstox_key} if keyed else {}
            caplog.clear()
            with caplog.at_level(logging.DEBUG):
                response = upstox_client.post(path, data=raw, content_type=content_type, headers=headers)
            assert_refused(response, upstox_gateway, fake_upstox, 400, f"deeper than {MAX_DEPTH}")
            logged = sum(len(r.getMessage()) + len(r.exc_text or "") for r in caplog.records)
            assert logged < 2000, f"{logged} characters of log for one bad request"


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 600, 5_000, 200_000])
def test_every_depth_past_the_limit_is_the_same_400(upstox_client, upstox_gateway, upstox_key, fake_upstox, levels):
    # The whole body counts: the object itself is one level, so "x" may hold MAX_DEPTH - 1.
    raw = '{"apikey": "%s", "x": %s}' % (upstox_key, nested(levels - 1))
    response = upstox_client.post("/api/v1/ping", data=raw)
    assert_refused(response, upstox_gateway, fake_upstox, 400, f"deeper than {MAX_DEPTH}")


def test_nesting_up_to_the_limit_is_accepted(upstox_client, upstox_key):
    raw = '{"apikey": "%s", "x": %s}' % (upstox_key, nested(MAX_DEPTH - 1))
    assert upstox_client.post("/api/v1/ping", data=raw).status_code == 200
    objects = '{"apikey": "%s", "x": %s}' % (upstox_key, '{"a":' * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1))
    assert upstox_client.post("/api/v1/ping", data=objects).status_code == 200


def test_deep_objects_count_as_well_as_arrays(upstox_client, upstox_gateway, upstox_key, fake_upstox):
    raw = '{"apikey": "%s", "x": %s}' % (upstox_key, '{"a":' * 100 + "1" + "}" * 100)
    response = upstox_client.post("/api/v1/placegtt", data=raw)
    assert_refused(response, upstox_gateway, fake_upstox, 400, f"deeper than {MAX_DEPTH}")


def test_a_deep_body_on_a_get_route_is_refused_too(upstox_client, upstox_gateway, upstox_key, fake_upstox):
    response = upstox_client.get("/api/gtt/cancel", query_string={"gtt_id": "GTT-1", "apikey": upstox_key},
                                 data='{"x": %s}' % nested(600))
    assert_refused(response, upstox_gateway, fake_upstox, 400, f"deeper than {MAX_DEPTH}")


@pytest.mark.parametrize("raw", ['{"apikey": "k", "x": %s}' % nested(600), '{"apikey": "k"}', "not json"])
def test_a_body_is_parsed_once_per_request(upstox_client, monkeypatch, raw):
    calls = []
    parse = body_module.parse_json_object
    monkeypatch.setattr(body_module, "parse_json_object", lambda data: calls.append(data) or parse(data))
    upstox_client.post("/api/v1/placegtt", data=raw)  # the limits, the NUL check, the view, the audit
    assert len(calls) == 1


def test_the_walkers_do_not_recurse():
    value: object = "\x00"
    for _ in range(50_000):
        value = [value]
    assert contains_nul({"x": value}) is True
    assert contains_nul({"x": [[[[]]]] * 1000}) is False
