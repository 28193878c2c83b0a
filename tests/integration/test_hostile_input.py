"""Hostile input, refused as classes (a security pass): every case is a JSON error with the right
status, reaches no broker, never a 500 or a traceback, and leaves exactly one audit row.

1. Nesting: a body nested deeper than body.MAX_DEPTH (32) on any route is a 400 naming the limit.
2. Loose coercion: numbers are JSON numbers or plain decimal strings, booleans JSON booleans or
   "true"/"false"; quantities are whole numbers.
3. Methods: HEAD and every undocumented method are a 405; HEAD only where GET merely reads.
4. Redirects: werkzeug's slash redirects (built from the request's Host) are a 404 instead.

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
        "/api/v1/gttorderstatus", "/api/v1/sandbox/ticks", "/api/v1/cancelorder", "/api/gtt/place",
        "/api/gtt/cancel",
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


# -- 2. loose coercion --------------------------------------------------------------------------

LOOSE = [
    ("quantity", True), ("quantity", False), ("quantity", "0x10"), ("quantity", "1_0"), ("quantity", "1e-1"),
    ("quantity", "1.5"), ("quantity", 1.5), ("quantity", "\u0661"), ("quantity", "+"), ("quantity", ""),
    ("quantity", "1 0"), ("quantity", [1]), ("quantity", {"n": 1}), ("quantity", None), ("quantity", "Infinity"),
    ("quantity", 1e20), ("quantity", "99999999999999999999999999"),
    ("triggerprice_tg", "1_0"), ("triggerprice_tg", "0x10"), ("triggerprice_tg", "1e1"), ("triggerprice_tg", True),
    ("triggerprice_tg", "NaN"), ("triggerprice_tg", "-inf"), ("triggerprice_tg", "\uff19.55"),
    ("triggerprice_tg", "9,55"), ("triggerprice_tg", "9.55.1"), ("triggerprice_tg", [9.55]),
    ("price", False), ("price", "0b1"), ("stoploss", "1E2"), ("target", "--1"), ("trailing_gap", "0o7"),
    ("entry_value", True), ("market_protection", True), ("market_protection", "5.5"),
    ("market_protection", "0x5"), ("market_protection", 5.5),
    ("force", "yes"), ("force", "1"), ("force", 1), ("force", 0), ("force", "on"), ("force", "t"),
    ("force", "no"), ("force", None), ("force", [True]),
]


@pytest.mark.parametrize("path", ["placegtt", "modifygtt"])
def test_loose_numbers_and_booleans_are_a_400_naming_the_field(
        upstox_client, upstox_gateway, upstox_key, fake_upstox, path):
    for field, value in LOOSE:
        body = {"apikey": upstox_key, **SINGLE_BUY, "trigger_id": "GTT-1", field: value}
        response = upstox_client.post(f"/api/v1/{path}", data=json.dumps(body), content_type="text/plain")
        answer = assert_refused(response, upstox_gateway, fake_upstox, 400, field)
        assert [e["field"] for e in answer["errors"]] == [field], (field, value, answer)


ACCEPTED = [  # in order: the day's limit (5) is passed on the way, so force matters at the end
    ({"quantity": "1.0"}, 1), ({"quantity": "2.000"}, 2), ({"quantity": " 3 "}, 3), ({"quantity": "+4"}, 4),
    ({"action": "buy"}, 1), ({"triggerprice_tg": " 9.55", "price": "9.55"}, 1), ({"triggerprice_tg": "9"}, 1),
    ({"market_protection": "5", "pricetype": "market"}, 1), ({"price": ""}, 1), ({"force": "TRUE"}, 1),
    ({"force": " true "}, 1),
]
NOT_FORCED = [{"force": "false"}, {"force": "FALSE"}, {"force": False}, {"force": ""}]


def test_plain_decimal_strings_and_true_false_are_accepted(upstox_client, upstox_key, fake_upstox):
    for change, sent in ACCEPTED:
        body = {"apikey": upstox_key, **SINGLE_BUY, "force": True, **change, "idempotency_key": json.dumps(change)}
        response = upstox_client.post("/api/v1/placegtt", data=json.dumps(body), content_type="text/plain")
        assert response.status_code == 200, (change, response.get_json())
        assert fake_upstox.gtt(response.get_json()["trigger_id"])["quantity"] == sent
    for change in NOT_FORCED:  # read as false: the day's limit applies
        body = {"apikey": upstox_key, **SINGLE_BUY, **change, "idempotency_key": json.dumps(change)}
        response = upstox_client.post("/api/v1/placegtt", data=json.dumps(body), content_type="text/plain")
        assert response.status_code == 429 and "Daily trade limit" in response.get_json()["message"], change


def test_a_json_whole_float_is_a_quantity(upstox_client, upstox_key, fake_upstox):
    raw = '{"apikey": "%s", "exchange": "NSE", "symbol": "IDEA", "action": "buy", "quantity": 2.0, ' \
          '"triggerprice_tg": 9.55}' % upstox_key
    response = upstox_client.post("/api/v1/placegtt", data=raw, content_type="text/plain")
    assert response.status_code == 200, response.get_json()
    assert fake_upstox.gtt(response.get_json()["trigger_id"])["quantity"] == 2


EXTREME_NUMBERS = ["1e999999999", "-1e999999999", "1e-999999999", "0.%s1" % ("0" * 5000), "9" * 4000,
                   "1e400", "1e99999999999999999999", "1e-99999999999999999999"]


def test_extreme_json_numbers_are_no_500(upstox_client, upstox_gateway, upstox_key, fake_upstox):
    for raw_number in EXTREME_NUMBERS:
        raw = '{"apikey": "%s", "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": %s, ' \
              '"triggerprice_tg": %s}' % (upstox_key, raw_number, raw_number)
        response = upstox_client.post("/api/v1/placegtt", data=raw)
        assert_refused(response, upstox_gateway, fake_upstox, 400)


def test_extreme_numbers_anywhere_in_the_body_are_a_400_with_an_audit_row(
        upstox_client, upstox_gateway, upstox_key, fake_upstox):
    # A field no model reads still reaches the audit row (PostgreSQL's json refuses Infinity).
    for raw_number in ["1e400", "-1e999999999", "1e99999999999999999999"]:
        raw = '{"apikey": "%s", "note": [%s]}' % (upstox_key, raw_number)
        response = upstox_client.post("/api/v1/ping", data=raw)
        assert_refused(response, upstox_gateway, fake_upstox, 400, "out of range")


SEED_LOOSE = [
    ("query", {**SEED_QUERY, "qty": "0x10"}, "qty"),
    ("query", {**SEED_QUERY, "qty": "1_0"}, "qty"),
    ("query", {**SEED_QUERY, "qty": "1.5"}, "qty"),
    ("query", {**SEED_QUERY, "force": "yes"}, "force"),
    ("query", {**SEED_QUERY, "force": "1"}, "force"),
    ("query", {**SEED_QUERY, "transaction_type": "HOLD"}, "transaction_type"),
    ("body", {**SEED_QUERY, "qty": True}, "qty"),
    ("body", {**SEED_QUERY, "qty": "1e-1"}, "qty"),  # "1e1" is 10, as OpenAlgo reads it; a fraction is not
    ("body", {**SEED_QUERY, "force": "yes"}, "force"),
    ("body", {**SEED_QUERY, "entry_value": "1_0", "entry_mode": "manual"}, "entry_value"),
    ("body", {**SEED_QUERY, "instrument": [IDEA]}, "instrument"),
    ("body", {**SEED_QUERY, "product": True}, "product"),
]


def test_the_seed_place_route_is_as_strict(upstox_client, upstox_gateway, upstox_key, fake_upstox):
    headers = {"X-API-KEY": upstox_key}
    for where, params, field in SEED_LOOSE:
        if where == "query":
            response = upstox_client.get("/api/gtt/place", query_string=params, headers=headers)
        else:
            response = upstox_client.post("/api/gtt/place", data=json.dumps(params), headers=headers,
                                          content_type="text/plain")
        body = assert_refused(response, upstox_gateway, fake_upstox, 400, field)
        assert body["success"] is False


def test_the_seed_cancel_wants_a_text_gtt_id(upstox_client, upstox_gateway, upstox_key, fake_upstox):
    for gtt_id in (12345, True, ["GTT-1"], {"id": "GTT-1"}, "x" * 65):
        response = upstox_client.post("/api/gtt/cancel", data=json.dumps({"gtt_id": gtt_id}),
                                      headers={"X-API-KEY": upstox_key})
        assert_refused(response, upstox_gateway, fake_upstox, 400, "gtt_id")


def test_the_seed_place_still_takes_strings_from_the_query(upstox_client, upstox_key, fake_upstox):
    response = upstox_client.get("/api/gtt/place", query_string={**SEED_QUERY, "qty": "2.0", "force": "True"},
                                 headers={"X-API-KEY": upstox_key})
    assert response.status_code == 200, response.get_json()
    assert fake_upstox.gtt(response.get_json()["gtt_id"])["quantity"] == 2


# -- 3. methods ----------------------------------------------------------------------------------

# Every route and the methods it answers; HEAD only where GET merely reads.
METHODS = {
    "/api/health": {"GET", "HEAD"},
    "/api/docs": {"GET", "HEAD"},
    "/api/swagger.json": {"GET", "HEAD"},
    "/api/": {"GET", "HEAD"},
    "/swaggerui/<path:filename>": {"GET", "HEAD"},
    "/api/gtt/orders": {"GET", "HEAD"},
    "/api/gtt/place": {"GET", "POST"},
    "/api/gtt/cancel": {"GET", "POST"},
    "/upstox/login": {"GET"},
    "/upstox/callback": {"GET"},
    "/kite/login": {"GET"},
    "/kite/callback": {"GET"},
    **{f"/api/v1/{name}": {"POST"} for name in (
        "ping", "placegtt", "placegttorder", "modifygtt", "modifygttorder", "cancelgtt", "cancelgttorder",
        "gttorderbook", "gttorderstatus", "sandbox/ticks", "orderbook", "tradebook", "positionbook", "funds",
        "cancelorder")},
    "/upstox/postback/<secret>": {"POST"},
    "/upstox/token-request": {"POST"},
    "/upstox/notifier/<secret>": {"POST"},
    # The trader's page (api/dashboard): its GETs read, its POSTs act.
    "/": {"GET"},
    "/ui/static/<path:filename>": {"GET"},
    **{path: {"GET"} for path in ("/ui/header", "/ui/upstox/login", "/ui/gtts", "/ui/gtts.csv", "/ui/gtt",
                                  "/ui/gtt/close", "/ui/gtt/modify", "/ui/new/fields", "/ui/symbols", "/ui/quote",
                                  "/ui/preview", "/ui/audit", "/ui/audit/row", "/ui/positions")},
    **{path: {"POST"} for path in ("/ui/signin", "/ui/signout", "/ui/placegtt", "/ui/modifygtt", "/ui/cancelgtt",
                                   "/ui/sandbox/ticks")},
}
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "CONNECT"]


def test_the_method_table_is_exactly_the_documented_one(upstox_client):
    table = {rule.rule: set(rule.methods) for rule in upstox_client.application.url_map.iter_rules()}
    assert table == METHODS


def concrete(rule: str, gateway) -> str:
    return (rule.replace("<path:filename>", "swagger-ui.css").replace("<secret>", gateway.webhook_secret))


@pytest.mark.parametrize("rule", sorted(METHODS))
def test_an_undocumented_method_is_a_405_that_does_nothing(upstox_client, upstox_gateway, upstox_key, fake_upstox, rule):
    path = concrete(rule, upstox_gateway)
    query = {**SEED_QUERY, "gtt_id": "GTT-1", "apikey": upstox_key, "code": "c", "state": "s"}
    body = json.dumps({"apikey": upstox_key, **SINGLE_BUY, **query})
    audited = rule.startswith(("/api/", "/upstox/")) and not rule.startswith(("/api/docs", "/api/swagger.json",
                                                                               "/api/health"))
    for method in ALL_METHODS:
        if method in METHODS[rule]:
            continue
        response = upstox_client.open(path, method=method, query_string=query, data=body,
                                      headers={"X-API-KEY": upstox_key})
        assert response.status_code == 405, (method, response.status_code)
        assert response.mimetype == "application/json"
        assert set(response.headers["Allow"].split(", ")) == METHODS[rule]
        if method != "HEAD":
            assert response.get_json()["status"] == "error"
        assert fake_upstox.calls == []
        if audited:
            rows = [r for r in audit_rows(upstox_gateway) if r.request_id == response.headers["X-Request-ID"]]
            assert [(r.method, r.http_status) for r in rows] == [(method, 405)]


def test_head_on_the_seed_place_places_nothing(upstox_client, upstox_gateway, upstox_key, fake_upstox):
    response = upstox_client.head("/api/gtt/place", query_string={**SEED_QUERY, "apikey": upstox_key})
    assert response.status_code == 405 and response.headers["Allow"] == "GET, POST"
    assert fake_upstox.calls == [] and upstox_gateway.orders.list(None) == []
    (row,) = audit_rows(upstox_gateway)
    assert (row.method, row.http_status) == ("HEAD", 405)


def test_head_still_answers_where_get_only_reads(upstox_client, upstox_key):
    assert upstox_client.head("/api/health").status_code == 200
    assert upstox_client.head("/api/gtt/orders", headers={"X-API-KEY": upstox_key}).status_code == 200


# -- 4. redirects built from the Host header ---------------------------------------------------

# (/api/v1/ping/ is the route itself, as OpenAlgo serves a trailing slash: answered, never redirected.)
REDIRECTING = [
    "/api//v1/ping", "//api/v1/ping", "/api/v1//ping", "/api/v1/ping//", "/api",
    "/api/health/", "/api//health", "/api/docs/", "/api/gtt//place", "/api/gtt/place/", "/upstox//login",
    "/upstox/login/", "/upstox//token-request", "/upstox/callback/", "/swaggerui//swagger-ui.css",
]


@pytest.mark.parametrize("path", REDIRECTING)
def test_no_redirect_is_built_from_the_host_header(upstox_client, upstox_key, fake_upstox, path):
    for method in ("GET", "POST", "HEAD", "PUT"):
        response = upstox_client.open(path, method=method, headers={"Host": "evil.example"},
                                      data=json.dumps({"apikey": upstox_key}), query_string={"apikey": upstox_key})
        assert response.status_code == 404, (method, response.status_code, response.headers.get("Location"))
        assert "Location" not in response.headers
        assert response.mimetype == "application/json"
        assert fake_upstox.calls == []
