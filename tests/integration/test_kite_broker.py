"""The Kite adapter against the fake Kite: the wire mapping, the issue's error table, and the
exactly-once lookup of a place whose answer was lost (the same settling as for Upstox)."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from openalgo_gtt.brokers.errors import BrokerFailure, BrokerUnreachable, InputRejected, RateLimited, TokenRejected
from openalgo_gtt.brokers.kite import KiteBroker
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, ENTRY, NATIVE_OCO, SINGLE, STOPLOSS, TARGET, GttRequest, GttRule,
)


@pytest.fixture
def fake(fake_kite):
    return fake_kite  # tests/integration/conftest.py


@pytest.fixture
def broker(fake):
    made = KiteBroker(fake.url, fake.api_key, fake.access_token, timeout=5.0, pacer=None, quote_pacer=None,
                      retry_backoff=0.01)
    yield made
    made.close()


def single(trigger: str, direction: str = ABOVE, price: str | None = None, qty: int = 1) -> GttRequest:
    rule = GttRule(ENTRY, direction, Decimal(trigger), price=None if price is None else Decimal(price))
    return GttRequest(SINGLE, "NSE:INFY", "BUY", "CNC", qty, (rule,))


def oco(low: str, high: str) -> GttRequest:
    return GttRequest(NATIVE_OCO, "NSE:INFY", "SELL", "CNC", 2,
                      (GttRule(STOPLOSS, BELOW, Decimal(low), price=Decimal(low) - 1),
                       GttRule(TARGET, ABOVE, Decimal(high))))


def test_single_and_two_leg_round_trip(broker, fake):
    gtt_id = broker.place_gtt(single("1600", price="1601.5"))
    got = broker.get_gtt(gtt_id)
    assert got.type == SINGLE and got.instrument_key == "NSE:INFY" and got.segment == "NSE_EQ"
    (rule,) = got.rules
    assert (rule.strategy, rule.trigger_type, rule.trigger_price, rule.price, rule.status) == (
        ENTRY, ABOVE, Decimal(1600), Decimal("1601.5"), "SCHEDULED")
    assert got.matches(single("1600", price="1601.5")) and got.created_at is not None

    pair_id = broker.place_gtt(oco("1500", "1650"))
    pair = broker.get_gtt(pair_id)
    assert pair.type == NATIVE_OCO and [r.strategy for r in pair.rules] == [STOPLOSS, TARGET]
    assert pair.matches(oco("1500", "1650"))
    assert {g.gtt_id for g in broker.list_gtts()} == {gtt_id, pair_id}

    fake.fire(pair_id, leg=0)
    fired = broker.get_gtt(pair_id)
    assert [r.status for r in fired.rules] == ["TRIGGERED", "CANCELLED"] and fired.rules[0].order_id
    broker.cancel_gtt(gtt_id)
    assert broker.get_gtt(gtt_id).rules[0].status == "CANCELLED"
    assert broker.get_gtt("424242") is None


def test_kite_statuses(broker, fake):
    gtt_id = broker.place_gtt(single("1600"))
    for status, rule_status in [("disabled", "INACTIVE"), ("expired", "EXPIRED"), ("rejected", "FAILED"),
                                ("cancelled", "CANCELLED"), ("deleted", "CANCELLED")]:
        fake.set_status(gtt_id, status)
        assert broker.get_gtt(gtt_id).rules[0].status == rule_status, status
    fake.set_status(gtt_id, "disabled")
    assert "needs action from the trader" in broker.get_gtt(gtt_id).rules[0].message


def test_wrong_side_triggers_are_refused_before_sending(broker, fake):
    with pytest.raises(InputRejected, match="above the last price 1550"):
        broker.place_gtt(single("1500"))
    with pytest.raises(InputRejected, match="either side of the last price 1550"):
        broker.place_gtt(oco("1560", "1650"))
    assert fake.calls_to("POST", "/gtt/triggers") == []


def test_error_table(broker, fake):
    fake.inject("POST /gtt/triggers", "429")  # nothing was done: one retry, then success
    assert broker.place_gtt(single("1600"))
    fake.inject("POST /gtt/triggers", "network", times=2)
    with pytest.raises(RateLimited) as limited:
        broker.place_gtt(single("1600"))
    assert limited.value.may_have_reached is False
    fake.inject("POST /gtt/triggers", "general")
    with pytest.raises(BrokerFailure) as failed:
        broker.place_gtt(single("1600"))
    assert failed.value.may_have_reached is True  # a write Kite may have done: settle it by lookup
    fake.inject("GET /gtt/triggers", "html", times=3)
    with pytest.raises(BrokerFailure):
        broker.list_gtts()
    fake.inject("POST /gtt/triggers", "drop", after_work=True)
    with pytest.raises(BrokerUnreachable) as dropped:
        broker.place_gtt(single("1600"))
    assert dropped.value.may_have_reached is True
    with pytest.raises(InputRejected, match="Invalid product"):
        broker.place_gtt(dataclasses.replace(single("1600"), product="MIS"))
    fake.access_token = "rotated"
    with pytest.raises(TokenRejected, match="Kite rejected the access token: log in again"):
        broker.list_gtts()


def test_every_call_carries_the_version_and_token_header(broker, fake, monkeypatch):
    seen, send = [], broker._adapter.send
    monkeypatch.setattr(broker._adapter, "send", lambda prepared, **kw: seen.append(prepared.headers) or send(prepared, **kw))
    broker.list_gtts()
    assert seen[0]["X-Kite-Version"] == "3"
    assert seen[0]["Authorization"] == f"token {fake.api_key}:{fake.access_token}"


# ----- exactly once, through the gateway --------------------------------------------------------


# kite_gateway and kite_client: tests/integration/conftest.py


def test_a_place_whose_answer_was_lost_is_found_not_placed_twice(kite_client, fake):
    client, key = kite_client
    fake.inject("POST /gtt/triggers", "drop", after_work=True)
    body = {"apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": 1, "product": "CNC",
            "trigger_type": "SINGLE", "triggerprice_tg": 1600}
    answer = client.post("/api/v1/placegtt", json=body)
    assert answer.status_code == 200, answer.get_json()
    (gtt,) = fake.gtts()
    assert answer.get_json()["trigger_id"] == str(gtt["id"])
    again = client.post("/api/v1/placegtt", json=body)  # the same body again: the duplicate's answer
    assert again.get_json()["trigger_id"] == str(gtt["id"]) and len(fake.gtts()) == 1


def test_native_oco_recovered_after_a_lost_answer_keeps_its_trigger_id(kite_client, fake):
    client, key = kite_client
    fake.inject("POST /gtt/triggers", "drop", after_work=True)
    answer = client.post("/api/v1/placegtt", json={
        "apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "SELL", "quantity": 1, "product": "CNC",
        "trigger_type": "OCO", "triggerprice_sl": 1500, "triggerprice_tg": 1650})
    assert answer.status_code == 200, answer.get_json()
    (gtt,) = fake.gtts()
    trigger_id = answer.get_json()["trigger_id"]
    assert trigger_id == f"OCO-{gtt['id']}"
    book = client.post("/api/v1/gttorderbook", json={"apikey": key}).get_json()["data"]
    assert [e["trigger_id"] for e in book] == [trigger_id]
    status = client.post("/api/v1/gttorderstatus", json={"apikey": key, "trigger_id": trigger_id}).get_json()
    assert status["data"]["trigger_type"] == "two-leg" and len(status["data"]["legs"]) == 2
    assert client.post("/api/v1/cancelgtt", json={"apikey": key, "trigger_id": trigger_id}).status_code == 200
    assert fake.gtt(gtt["id"])["status"] == "deleted"


def test_a_disabled_gtt_is_shown_live_with_kites_call_to_act(kite_client, fake):
    client, key = kite_client
    placed = client.post("/api/v1/placegtt", json={
        "apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": 1, "product": "CNC",
        "trigger_type": "SINGLE", "triggerprice_tg": 1600}).get_json()
    fake.set_status(placed["trigger_id"], "disabled")
    (entry,) = client.post("/api/v1/gttorderbook", json={"apikey": key}).get_json()["data"]
    assert entry["status"] == "active" and "needs action from the trader" in entry["message"]


def test_a_two_leg_placed_in_kite_shows_and_modifies_through_the_gateway(kite_client, fake):
    from kiteconnect import KiteConnect

    client, key = kite_client
    kite = KiteConnect(api_key=fake.api_key, access_token=fake.access_token, root=fake.url)
    legs = [{"transaction_type": "SELL", "quantity": 1, "order_type": "LIMIT", "product": "CNC", "price": p}
            for p in (1500, 1650)]
    trigger_id = str(kite.place_gtt(kite.GTT_TYPE_OCO, "INFY", "NSE", [1500, 1650], 1550, legs)["trigger_id"])
    (entry,) = client.post("/api/v1/gttorderbook", json={"apikey": key}).get_json()["data"]
    assert (entry["trigger_id"], entry["trigger_type"], entry["symbol"]) == (trigger_id, "two-leg", "INFY")
    modified = client.post("/api/v1/modifygtt", json={
        "apikey": key, "trigger_id": trigger_id, "symbol": "INFY", "exchange": "NSE", "action": "SELL",
        "quantity": 1, "product": "CNC", "trigger_type": "OCO", "triggerprice_sl": 1490, "triggerprice_tg": 1660})
    assert modified.status_code == 200, modified.get_json()
    assert fake.gtt(trigger_id)["condition"]["trigger_values"] == [1490, 1660]
