"""OCO as two Upstox SINGLE GTTs, settled by the watcher (in-process, against the fake Upstox)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from openalgo_gtt.store.leases import DatabaseLease
from openalgo_gtt.store.models import GttOrder

OCO_SELL = {
    "strategy": "Python", "trigger_type": "OCO", "exchange": "NSE", "symbol": "INFY", "action": "SELL",
    "product": "CNC", "quantity": 5, "pricetype": "LIMIT", "price": 0.0, "triggerprice_sl": 1480.0,
    "triggerprice_tg": 1620.0, "stoploss": 1478.0, "target": 1622.0,
}


@pytest.fixture
def post(upstox_client, upstox_key):
    def send(path, body=None, **fields):
        return upstox_client.post(f"/api/v1/{path}", data=json.dumps({"apikey": upstox_key, **(body or {}), **fields}),
                                  content_type="application/json")

    return send


def place_oco(post):
    response = post("placegtt", OCO_SELL)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_an_oco_is_two_single_gtts_on_the_callers_side(post, fake_upstox):
    body = place_oco(post)
    assert body["trigger_id"].startswith("OCO-")
    assert body["stoploss_trigger"] == 1480.0 and body["target_trigger"] == 1620.0
    assert body["trade_count"] == 1  # one trigger, one trade
    gtts = fake_upstox.gtts()
    assert len(gtts) == 2
    assert {g["type"] for g in gtts} == {"SINGLE"}
    rules = sorted((float(g["rules"][0]["trigger_price"]), g["rules"][0]["trigger_type"], g["rules"][0]["transaction_type"])
                   for g in gtts)
    assert rules == [(1480.0, "BELOW", "SELL"), (1620.0, "ABOVE", "SELL")]  # never IMMEDIATE, never BUY


def test_the_book_shows_one_two_leg_entry(post, fake_upstox):
    trigger_id = place_oco(post)["trigger_id"]
    (entry,) = post("gttorderbook").get_json()["data"]
    assert entry["trigger_id"] == trigger_id and entry["trigger_type"] == "two-leg"
    assert entry["status"] == "active" and entry["trigger_prices"] == [1480.0, 1620.0]
    assert [(leg["role"], leg["action"], leg["quantity"], leg["product"]) for leg in entry["legs"]] == [
        ("stoploss", "SELL", 5, "CNC"), ("target", "SELL", 5, "CNC")]
    assert entry["last_price"] == 1550.0


def test_a_failed_second_leg_leaves_nothing_at_the_broker(post, fake_upstox, upstox_gateway):
    broker = upstox_gateway.broker
    original, sent = broker.place_gtt, []

    def place_then_fail_the_second(request):
        if sent:
            fake_upstox.inject("gtt.place", "error", status=400, code="UDAPI1130", message="Trigger price out of range")
        sent.append(request)
        return original(request)

    broker.place_gtt = place_then_fail_the_second
    response = post("placegtt", OCO_SELL)
    assert response.status_code == 400
    assert "Trigger price out of range" in response.get_json()["message"]
    assert len(sent) == 2
    assert all(g["rules"][0]["status"] == "CANCELLED" for g in fake_upstox.gtts())  # the first leg withdrawn
    assert upstox_gateway.trade_limit.today_count() == 0
    with upstox_gateway.sessions() as session:
        assert session.scalars(select(GttOrder)).all() == []


def test_an_ambiguous_second_leg_made_by_upstox_is_found_and_the_pair_placed(post, fake_upstox, upstox_gateway):
    broker = upstox_gateway.broker
    original, sent = broker.place_gtt, []

    def place_then_lose_the_second_answer(request):
        if sent:
            fake_upstox.inject("gtt.place", "500", after_work=True)
        sent.append(request)
        return original(request)

    broker.place_gtt = place_then_lose_the_second_answer
    answer = post("placegtt", OCO_SELL)
    assert answer.status_code == 200, answer.get_json()
    gtts = fake_upstox.gtts()
    assert len(gtts) == 2 and all(g["rules"][0]["status"] == "SCHEDULED" for g in gtts)
    recorded = upstox_gateway.orders.get(answer.get_json()["trigger_id"])
    assert sorted(recorded.broker_ids) == sorted(g["gtt_order_id"] for g in gtts)
    assert upstox_gateway.trade_limit.today_count() == 1


def test_the_watcher_cancels_the_other_leg_when_one_fires(post, fake_upstox, upstox_gateway):
    trigger_id = place_oco(post)["trigger_id"]
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    assert upstox_gateway.watcher.sync().pairs_settled == []  # both waiting: nothing to do
    fake_upstox.set_rule_status(upper, "ENTRY", "TRIGGERED", order_id="250101000001")
    report = upstox_gateway.watcher.sync()
    assert report.pairs_settled == [trigger_id]
    assert fake_upstox.gtt(lower)["rules"][0]["status"] == "CANCELLED"
    status = post("gttorderstatus", {"trigger_id": trigger_id}).get_json()["data"]
    assert status["status"] == "triggered" and status["trigger_type"] == "two-leg"
    assert post("gttorderbook").get_json()["data"] == []
    (entry,) = post("gttorderbook", {"status": "all"}).get_json()["data"]
    assert entry["status"] == "triggered"


def test_the_webhook_settles_a_pair_at_once(upstox_client, post, fake_upstox, upstox_gateway):
    trigger_id = place_oco(post)["trigger_id"]
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    fake_upstox.set_rule_status(lower, "ENTRY", "COMPLETED", order_id="250101000002")
    url = f"/upstox/postback/{upstox_gateway.webhook_secret}"
    update = {"update_type": "gtt_order", "gtt_order_id": lower, "type": "SINGLE", "rules": []}
    answer = upstox_client.post(url, json=update)
    assert answer.status_code == 200 and answer.get_json()["settled"] is True
    assert fake_upstox.gtt(upper)["rules"][0]["status"] == "CANCELLED"
    assert upstox_gateway.orders.get(trigger_id).status == "triggered"
    assert upstox_client.post("/upstox/postback/wrong-secret", json=update).status_code == 404


def test_cancel_and_modify_act_on_both_legs(post, fake_upstox, upstox_gateway):
    trigger_id = place_oco(post)["trigger_id"]
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    modified = post("modifygtt", {**OCO_SELL, "trigger_id": trigger_id, "triggerprice_sl": 1490, "triggerprice_tg": 1610})
    assert modified.status_code == 200, modified.get_json()
    assert float(fake_upstox.gtt(lower)["rules"][0]["trigger_price"]) == 1490.0
    assert float(fake_upstox.gtt(upper)["rules"][0]["trigger_price"]) == 1610.0
    assert post("cancelgtt", {"trigger_id": trigger_id}).status_code == 200
    assert all(g["rules"][0]["status"] == "CANCELLED" for g in fake_upstox.gtts())
    assert upstox_gateway.orders.get(trigger_id).status == "cancelled"


def test_the_watcher_keeps_single_statuses_current(post, fake_upstox, upstox_gateway):
    single = post("placegtt", {**OCO_SELL, "trigger_type": "SINGLE", "triggerprice_sl": 0}).get_json()["trigger_id"]
    fake_upstox.set_rule_status(single, "ENTRY", "FAILED", message="Insufficient holdings")
    assert upstox_gateway.watcher.sync().statuses_changed == [single]
    record = upstox_gateway.orders.get(single)
    assert (record.status, record.status_message) == ("rejected", "Insufficient holdings")


def test_the_lease_admits_one_holder_until_it_lapses(upstox_gateway):
    clock = [datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)]
    first = DatabaseLease(upstox_gateway.engine, "job", "worker-1", timedelta(seconds=10), now=lambda: clock[0])
    second = DatabaseLease(upstox_gateway.engine, "job", "worker-2", timedelta(seconds=10), now=lambda: clock[0])
    assert first.acquire() and not second.acquire()
    clock[0] += timedelta(seconds=5)
    assert first.acquire() and not second.acquire()  # renewed
    clock[0] += timedelta(seconds=11)  # worker-1 died and stopped renewing
    assert second.acquire() and not first.acquire()
