"""The GTT endpoints through the Flask app against the fake Upstox server."""
from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from openalgo_gtt.store.models import AuditRecord, GttOrder

IDEA = "NSE_EQ|INE669E01016"


@pytest.fixture
def post(upstox_client, upstox_key):
    def send(path, body=None, content_type="application/json", **fields):
        payload = {"apikey": upstox_key, **(body or {}), **fields}
        return upstox_client.post(f"/api/v1/{path}", data=json.dumps(payload), content_type=content_type)

    return send


SINGLE_BUY = {
    "strategy": "Python", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
    "product": "CNC", "quantity": 1, "pricetype": "LIMIT", "price": 9.55, "triggerprice_sl": 0.0,
    "triggerprice_tg": 9.55, "stoploss": None, "target": None,
}


def test_single_place_is_one_broker_call_with_the_documented_body(post, fake_upstox):
    response = post("placegtt", SINGLE_BUY)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "success" and body["trigger_id"].startswith("GTT-")
    assert body["trade_count"] == 1
    assert body["entry"] == 9.55
    assert "warnings" not in body
    assert [c[1] for c in fake_upstox.calls] == ["/v3/order/gtt/place"]  # no quote needed
    stored = fake_upstox.gtt(body["trigger_id"])
    assert stored["type"] == "SINGLE" and stored["product"] == "D" and stored["quantity"] == 1
    assert stored["instrument_token"] == IDEA
    (rule,) = stored["rules"]
    assert (rule["strategy"], rule["trigger_type"], float(rule["trigger_price"]), rule["transaction_type"]) == (
        "ENTRY", "ABOVE", 9.55, "BUY")


def test_sdk_aliases_and_numeric_strings_and_lowercase_action(post, fake_upstox):
    body = {**SINGLE_BUY, "action": "sell", "quantity": "3", "triggerprice_tg": "0", "triggerprice_sl": "9.2",
            "price": "9.2", "product": "mis"}
    response = post("placegttorder", body)
    assert response.status_code == 200, response.get_json()
    stored = fake_upstox.gtt(response.get_json()["trigger_id"])
    assert stored["product"] == "I" and stored["quantity"] == 3
    assert stored["rules"][0]["trigger_type"] == "BELOW" and stored["rules"][0]["transaction_type"] == "SELL"


def test_text_plain_webhook_body(upstox_client, upstox_key, fake_upstox):
    raw = ('{"apikey": "%s", "exchange": "NSE", "symbol": "IDEA", "action": "buy", "quantity": "1", '
           '"triggerprice_tg": "9.55", "trigger_type": "SINGLE", "comment": "{{strategy.order.comment}}"}') % upstox_key
    response = upstox_client.post("/api/v1/placegtt", data=raw, content_type="text/plain")
    assert response.status_code == 200, response.get_json()


def test_off_tick_prices_are_rounded_and_said_so(post, fake_upstox):
    response = post("placegtt", {**SINGLE_BUY, "triggerprice_tg": 9.553, "price": 9.60})
    body = response.get_json()
    assert body["entry"] == 9.55
    assert any("9.553" in w for w in body["warnings"])
    assert any("LIMIT" in w for w in body["warnings"])  # price differs from the trigger
    assert float(fake_upstox.gtt(body["trigger_id"])["rules"][0]["trigger_price"]) == 9.55


@pytest.mark.parametrize(
    "change,fragment",
    [
        ({"triggerprice_tg": 0, "triggerprice_sl": 0}, "triggerprice"),
        ({"triggerprice_tg": 9.6, "triggerprice_sl": 9.2}, "OCO"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "ten"}, "quantity"),
        ({"action": "HOLD"}, "action"),
        ({"product": "XYZ"}, "product"),
        ({"triggerprice_tg": "NaN"}, "triggerprice_tg"),
        ({"triggerprice_tg": 1e300}, "triggerprice_tg"),
        ({"triggerprice_tg": -5}, "triggerprice_tg"),
        ({"symbol": ""}, "symbol"),
    ],
)
def test_bad_input_is_a_400_that_reaches_no_broker(post, fake_upstox, change, fragment):
    response = post("placegtt", {**SINGLE_BUY, **change})
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["status"] == "error" and fragment in body["message"]
    assert fake_upstox.calls == []


def test_derivative_quantity_must_be_a_lot_multiple(post, fake_upstox):
    response = post("placegtt", {**SINGLE_BUY, "exchange": "NFO", "symbol": "NIFTY29DEC2624500CE",
                                 "product": "NRML", "quantity": 10, "triggerprice_tg": 150})
    assert response.status_code == 400
    assert "75" in response.get_json()["message"]
    assert fake_upstox.calls == []


def test_unknown_symbol_is_a_404_with_suggestions(post, fake_upstox):
    response = post("placegtt", {**SINGLE_BUY, "symbol": "INFYY"})
    assert response.status_code == 404
    body = response.get_json()
    assert "INFYY" in body["message"] and "INFY" in body["suggestions"]
    assert fake_upstox.calls == []


def test_oco_with_the_triggers_the_wrong_way_round_is_a_400(post, fake_upstox):
    response = post("placegtt", {**SINGLE_BUY, "trigger_type": "OCO", "action": "SELL",
                                 "triggerprice_sl": 10.0, "triggerprice_tg": 9.0, "stoploss": 9.95, "target": 9.05})
    assert response.status_code == 400
    assert "triggerprice_sl < triggerprice_tg" in response.get_json()["message"]
    assert fake_upstox.calls == []


def test_bracket_auto_strategy_from_the_open(post, fake_upstox):
    # IDEA open 10.00, last 9.50: entry 10.40 (ABOVE the last price), target 10.50, stop 10.30
    response = post("placegtt", {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 10,
                                 "trigger_type": "BRACKET", "product": "MIS"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["entry"], body["target"], body["stoploss"]) == (10.40, 10.50, 10.30)
    stored = fake_upstox.gtt(body["trigger_id"])
    assert stored["type"] == "MULTIPLE"
    rules = {r["strategy"]: r for r in stored["rules"]}
    assert rules["ENTRY"]["trigger_type"] == "ABOVE" and float(rules["ENTRY"]["trigger_price"]) == 10.40
    assert float(rules["TARGET"]["trigger_price"]) == 10.50 and float(rules["STOPLOSS"]["trigger_price"]) == 10.30
    assert [c[1] for c in fake_upstox.calls] == ["/v3/market-quote/ohlc", "/v3/order/gtt/place"]


def test_bracket_manual_prices_in_the_wrong_order_are_refused(post, fake_upstox):
    response = post("placegtt", {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 10,
                                 "trigger_type": "BRACKET", "entry_mode": "manual", "entry_value": 10,
                                 "target_type": "manual", "target_value": 9.9, "sl_type": "manual", "sl_value": 9.5})
    assert response.status_code == 400
    assert not fake_upstox.calls_to("gtt.place")


def test_modify_replaces_and_cannot_change_the_instrument(post, fake_upstox):
    trigger_id = post("placegtt", SINGLE_BUY).get_json()["trigger_id"]
    modified = post("modifygttorder", {**SINGLE_BUY, "trigger_id": trigger_id, "quantity": 2, "triggerprice_tg": 9.8})
    assert modified.status_code == 200, modified.get_json()
    stored = fake_upstox.gtt(trigger_id)
    assert stored["quantity"] == 2 and float(stored["rules"][0]["trigger_price"]) == 9.8
    refused = post("modifygtt", {**SINGLE_BUY, "trigger_id": trigger_id, "symbol": "INFY", "triggerprice_tg": 1600})
    assert refused.status_code == 400 and "cancel and place again" in refused.get_json()["message"]
    flipped = post("modifygtt", {**SINGLE_BUY, "trigger_id": trigger_id, "action": "SELL"})
    assert flipped.status_code == 400


def test_modify_and_cancel_of_an_unknown_trigger_are_404(post):
    assert post("modifygtt", {**SINGLE_BUY, "trigger_id": "GTT-NOPE"}).status_code == 404
    assert post("cancelgtt", {"trigger_id": "GTT-NOPE"}).status_code == 404


def test_cancel_then_the_book_no_longer_shows_it(post, fake_upstox, upstox_gateway):
    keep = post("placegtt", SINGLE_BUY).get_json()["trigger_id"]
    gone = post("placegtt", {**SINGLE_BUY, "triggerprice_tg": 9.9}).get_json()["trigger_id"]
    cancelled = post("cancelgttorder", {"trigger_id": gone})
    assert cancelled.status_code == 200 and cancelled.get_json()["trigger_id"] == gone
    fake_upstox.clear_calls()
    book = post("gttorderbook").get_json()
    assert [e["trigger_id"] for e in book["data"]] == [keep]
    assert len(fake_upstox.calls) == 2  # one list + one batched quote
    everything = post("gttorderbook", {"status": "all"}).get_json()["data"]
    assert {e["trigger_id"]: e["status"] for e in everything} == {keep: "active", gone: "cancelled"}
    with upstox_gateway.sessions() as session:
        assert session.scalar(select(GttOrder.status).where(GttOrder.trigger_id == gone)) == "cancelled"


def test_book_entry_has_openalgos_shape(post, fake_upstox):
    trigger_id = post("placegtt", SINGLE_BUY).get_json()["trigger_id"]
    (entry,) = post("gttorderbook").get_json()["data"]
    assert entry["trigger_id"] == trigger_id
    assert entry["trigger_type"] == "single" and entry["status"] == "active"
    assert (entry["symbol"], entry["exchange"]) == ("IDEA", "NSE")
    assert entry["trigger_prices"] == [9.55] and entry["last_price"] == 9.5
    (leg,) = entry["legs"]
    assert (leg["action"], leg["quantity"], leg["price"], leg["pricetype"], leg["product"]) == ("BUY", 1, 9.55, "LIMIT", "CNC")
    assert len(entry["created_at"]) == 19 and entry["expires_at"]


def test_status_reports_each_legs_broker_state(post, fake_upstox):
    trigger_id = post("placegtt", SINGLE_BUY).get_json()["trigger_id"]
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "FAILED", message="Insufficient funds")
    data = post("gttorderstatus", {"trigger_id": trigger_id}).get_json()["data"]
    assert data["status"] == "rejected"
    assert data["legs"][0]["status"] == "FAILED" and data["legs"][0]["message"] == "Insufficient funds"
    assert post("gttorderstatus", {"trigger_id": "GTT-NOPE"}).status_code == 404


def test_daily_limit_refuses_with_429_and_force_overrides(post, fake_upstox):
    for n in range(1, 6):
        assert post("placegtt", {**SINGLE_BUY, "triggerprice_tg": 9.5 + n / 100}).get_json()["trade_count"] == n
    refused = post("placegtt", {**SINGLE_BUY, "triggerprice_tg": 9.60})
    assert refused.status_code == 429
    assert refused.get_json()["message"] == "Daily trade limit reached (5 of 5 today); send force=true to override"
    forced = post("placegtt", {**SINGLE_BUY, "triggerprice_tg": 9.60, "force": True})
    assert forced.status_code == 200 and forced.get_json()["trade_count"] == 6
    assert len(fake_upstox.calls_to("gtt.place")) == 6


@pytest.mark.parametrize("upstox_timeout", [1.0])  # a hang is told from an answer by this budget
@pytest.mark.parametrize(
    "fault,status",
    [("401", 502), ("500", 502), ("502_html", 502), ("empty", 502), ("truncated", 502),
     ("missing_fields", 502), ("hang", 504), ("error", 400)],
)
def test_broker_failures_as_callers_see_them(post, fake_upstox, upstox_gateway, fault, status):
    fake_upstox.inject("gtt.place", fault, seconds=3)
    response = post("placegtt", SINGLE_BUY)
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["status"] == "error"
    if fault == "401":
        assert body["message"] == "Upstox rejected the access token (UDAPI100050): log in again"
    if fault == "error":
        assert body["broker_code"]
    # A failure costs no quota in the end. An ambiguous one (Upstox may still create the GTT)
    # keeps its trade while it settles; the watcher gives it back once the window has passed.
    ambiguous = fault not in ("401", "error")
    assert upstox_gateway.trade_limit.today_count() == (1 if ambiguous else 0)
    if ambiguous:
        time.sleep(upstox_gateway.settings.settle_seconds)  # the window passes with nothing at Upstox
    upstox_gateway.watcher.sync()
    assert upstox_gateway.trade_limit.today_count() == 0
    assert fake_upstox.gtts() == []
    assert post("placegtt", {**SINGLE_BUY, "triggerprice_tg": 9.6}).status_code == 200  # next one works


def test_a_broker_429_is_retried_within_the_callers_patience(post, fake_upstox, upstox_gateway):
    fake_upstox.inject("gtt.place", "429")  # nothing placed: safe to send again
    assert post("placegtt", SINGLE_BUY).status_code == 200
    assert len(fake_upstox.calls_to("gtt.place")) == 2 and len(fake_upstox.gtts()) == 1


def test_a_broker_that_keeps_answering_429_is_a_429(post, fake_upstox, upstox_gateway):
    fake_upstox.inject("gtt.place", "429", times=None)
    assert post("placegtt", SINGLE_BUY).status_code == 429
    assert upstox_gateway.trade_limit.today_count() == 0


def test_every_gtt_request_leaves_one_audit_row_with_its_broker_calls(post, upstox_gateway):
    post("placegtt", SINGLE_BUY)
    post("placegtt", {**SINGLE_BUY, "symbol": "NOPE"})
    post("gttorderbook")
    with upstox_gateway.sessions() as session:
        rows = session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
    assert [r.http_status for r in rows] == [200, 404, 200]
    assert [c["path"] for c in rows[0].broker_calls] == ["/v3/order/gtt/place"]
    assert rows[0].broker_calls[0]["status"] == 200
    assert rows[1].broker_calls is None
    assert all(r.request_body["apikey"] == "***" for r in rows)


def test_legacy_seed_routes(upstox_client, upstox_key, fake_upstox):
    headers = {"X-API-KEY": upstox_key}
    placed = upstox_client.post("/api/gtt/place", headers=headers, json={
        "instrument": IDEA, "symbol_key": "NSE_EQ:IDEA", "qty": 10, "transaction_type": "BUY"})
    assert placed.status_code == 200, placed.get_json()
    body = placed.get_json()
    assert body["success"] is True and body["status"] == "ACTIVE" and body["trade_count"] == 1
    gtt_id = body["gtt_id"]
    assert fake_upstox.gtt(gtt_id)["type"] == "MULTIPLE"
    orders = upstox_client.get(f"/api/gtt/orders?status=ACTIVE&apikey={upstox_key}").get_json()
    assert orders["success"] is True and orders["count"] == 1 and orders["orders"][0]["gtt_id"] == gtt_id
    cancelled = upstox_client.get(f"/api/gtt/cancel?gtt_id={gtt_id}", headers=headers).get_json()
    assert cancelled == {"success": True, "gtt_id": gtt_id, "status": "CANCELLED", "request_id": cancelled["request_id"]}
    orders = upstox_client.get("/api/gtt/orders?status=CANCELLED", headers=headers).get_json()
    assert orders["count"] == 1 and orders["orders"][0]["cancelled_at"]
    denied = upstox_client.get("/api/gtt/orders")
    assert denied.status_code == 403 and denied.get_json()["success"] is False


def test_an_index_cannot_be_traded(post, fake_upstox):
    response = post("placegtt", {**SINGLE_BUY, "exchange": "NSE_INDEX", "symbol": "NIFTY", "triggerprice_tg": 24000})
    assert response.status_code == 400 and "index" in response.get_json()["message"]
    assert fake_upstox.calls == []
