"""A fired leg's order, followed (issue 27): looked up once as the watcher records the fire, its
fill in the "triggered" message and in the store; an order still open is asked about again less
and less often, and the trader is told once when it ends. Against the fake Upstox, with the
gateway's clock moved instead of waited on."""
from __future__ import annotations

import json

import pytest

from openalgo_gtt.domain.notifications import render

BODY = {"strategy": "Python", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
        "product": "CNC", "quantity": 10, "pricetype": "LIMIT", "price": 9.61, "triggerprice_tg": 9.61}


@pytest.fixture
def place(upstox_client, upstox_key):
    def send(**change) -> str:
        answer = upstox_client.post("/api/v1/placegtt", data=json.dumps({"apikey": upstox_key, **BODY, **change}),
                                    content_type="application/json")
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["trigger_id"]

    return send


def messages(gateway, trigger_id):
    return [(str(event.kind), render(event)) for event, _ in gateway.store.outbox.events_for(trigger_id)]


def test_a_fire_whose_order_filled_says_what_was_bought(upstox_gateway, fake_upstox, place):
    trigger_id = place()
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="261208000000101")
    fake_upstox.set_order("261208000000101", status="complete", filled_quantity=10, average_price=9.61)
    upstox_gateway.watcher.sync()

    ((kind, message),) = [m for m in messages(upstox_gateway, trigger_id) if m[0] == "triggered"]
    assert message.body.splitlines()[1] == "bought 10 IDEA at 9.61"
    assert len(fake_upstox.calls_to("order.details")) == 1
    (leg,) = upstox_gateway.store.fills.of_triggers([trigger_id])[trigger_id]
    assert (leg.order_id, leg.fill.status, leg.fill.filled_quantity, leg.final) == (
        "261208000000101", "COMPLETE", 10, True)

    upstox_gateway.clock.advance(3600)
    upstox_gateway.watcher.sync()
    upstox_gateway.fills.follow_up()
    assert len(fake_upstox.calls_to("order.details")) == 1  # final: never asked again
    assert [kind for kind, _ in messages(upstox_gateway, trigger_id)].count("order_done") == 0


def test_an_order_open_at_the_fire_is_followed_until_it_ends_and_told_once(upstox_gateway, fake_upstox, place):
    trigger_id = place()
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="261208000000102")
    fake_upstox.set_order("261208000000102", status="open", filled_quantity=0, average_price=0)
    upstox_gateway.watcher.sync()
    (triggered,) = [m for kind, m in messages(upstox_gateway, trigger_id) if kind == "triggered"]
    assert triggered.body.splitlines()[1] == "order open at the broker, nothing filled yet"

    def asked() -> int:
        return len(fake_upstox.calls_to("order.details"))

    assert asked() == 1
    upstox_gateway.fills.follow_up()
    assert asked() == 1  # not due yet
    upstox_gateway.clock.advance(5)
    upstox_gateway.fills.follow_up()
    assert asked() == 2  # still open: the next look is 10 s later
    fake_upstox.set_order("261208000000102", status="complete", filled_quantity=10, average_price=9.6)
    upstox_gateway.clock.advance(5)
    upstox_gateway.fills.follow_up()
    assert asked() == 2
    upstox_gateway.clock.advance(5)
    upstox_gateway.fills.follow_up()
    assert asked() == 3
    (done,) = [m for kind, m in messages(upstox_gateway, trigger_id) if kind == "order_done"]
    assert done.title == "GTT order filled" and "bought 10 IDEA at 9.60" in done.body
    upstox_gateway.clock.advance(3600)
    upstox_gateway.fills.follow_up()
    assert asked() == 3 and [kind for kind, _ in messages(upstox_gateway, trigger_id)].count("order_done") == 1


def test_a_fire_listed_before_its_order_exists_is_looked_up_once_the_order_is_named(upstox_gateway, fake_upstox,
                                                                                      place):
    trigger_id = place()
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED")  # no order id yet
    upstox_gateway.watcher.sync()
    assert fake_upstox.calls_to("order.details") == []
    (triggered,) = [m for kind, m in messages(upstox_gateway, trigger_id) if kind == "triggered"]
    assert len(triggered.body.splitlines()) == 2  # no fill line: nothing to say yet (the time follows)

    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="261208000000103")
    fake_upstox.set_order("261208000000103", status="rejected", filled_quantity=0, average_price=0,
                          status_message="Insufficient funds")
    upstox_gateway.clock.advance(5)
    upstox_gateway.fills.follow_up()
    (done,) = [m for kind, m in messages(upstox_gateway, trigger_id) if kind == "order_done"]
    assert done.title == "GTT order rejected" and "order rejected: Insufficient funds" in done.body


def test_a_burst_of_fires_looks_up_a_bounded_number_in_the_pass_and_follows_up_the_rest(
        upstox_gateway, fake_upstox, place, monkeypatch):
    import openalgo_gtt.services.watcher as watcher_module

    monkeypatch.setattr(watcher_module, "FIRES_PER_PASS", 2)
    monkeypatch.setattr(upstox_gateway.trade_limit, "limit", 100)
    ids = [place(quantity=10 + n) for n in range(4)]  # four alerts, not one repeated
    for n, trigger_id in enumerate(ids):
        fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id=f"26120800000020{n}")
        fake_upstox.set_order(f"26120800000020{n}", status="complete", filled_quantity=10, average_price=9.61)
    upstox_gateway.watcher.sync()
    assert len(fake_upstox.calls_to("order.details")) == 2
    upstox_gateway.clock.advance(5)
    upstox_gateway.fills.follow_up()
    assert len(fake_upstox.calls_to("order.details")) == 4
    stored = upstox_gateway.store.fills.of_triggers(ids)
    assert all(legs[0].final for legs in stored.values()) and len(stored) == 4
