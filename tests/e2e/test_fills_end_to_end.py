"""The fill of a fired GTT leg on gttorderstatus (issue 27): Upstox's order details looked up once
the leg has an order id (again only while the order is open), and the sandbox's paper order."""
from __future__ import annotations

import requests

from tests.e2e.test_sandbox_end_to_end import start


def test_a_live_gtts_fill_appears_in_gttorderstatus_looked_up_once_it_is_final(server_factory, fake_upstox):
    server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, OCO_POLL_SECONDS="600")
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    server.start()

    def post(path, **body):
        answer = requests.post(f"{server.url}/api/v1/{path}", json={"apikey": key, **body}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    trigger_id = post("placegtt", exchange="NSE", symbol="IDEA", action="BUY", product="CNC", quantity=3,
                      trigger_type="SINGLE", price=9.7, triggerprice_tg=9.7)["trigger_id"]
    (leg,) = post("gttorderstatus", trigger_id=trigger_id)["data"]["legs"]
    assert "fill" not in leg  # no order yet: nothing to look up
    assert fake_upstox.calls_to("order.details") == []

    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="250101000000777")
    fake_upstox.set_order("250101000000777", status="open", filled_quantity=0, average_price=0)
    (leg,) = post("gttorderstatus", trigger_id=trigger_id)["data"]["legs"]
    assert leg["fill"] == {"status": "OPEN", "filled_quantity": 0, "average_price": None, "message": None}

    fake_upstox.set_rule_status(trigger_id, "ENTRY", "COMPLETED", order_id="250101000000777")
    fake_upstox.set_order("250101000000777", status="complete", filled_quantity=3, average_price=9.7)
    for _ in range(3):
        (leg,) = post("gttorderstatus", trigger_id=trigger_id)["data"]["legs"]
        assert leg["fill"] == {"status": "COMPLETE", "filled_quantity": 3, "average_price": 9.7, "message": None}
    assert len(fake_upstox.calls_to("order.details")) == 2  # once while open, once final, then kept


def test_a_rejected_orders_reason_appears_in_gttorderstatus(server_factory, fake_upstox):
    server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, OCO_POLL_SECONDS="600")
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    server.start()
    body = {"apikey": key, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC", "quantity": 3,
            "trigger_type": "SINGLE", "price": 9.7, "triggerprice_tg": 9.7}
    trigger_id = requests.post(f"{server.url}/api/v1/placegtt", json=body, timeout=10).json()["trigger_id"]
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="250101000000888")
    fake_upstox.set_order("250101000000888", status="rejected", filled_quantity=0, average_price=0,
                          status_message="Insufficient funds")
    data = requests.post(f"{server.url}/api/v1/gttorderstatus", json={"apikey": key, "trigger_id": trigger_id},
                         timeout=10).json()["data"]
    assert data["legs"][0]["fill"] == {"status": "REJECTED", "filled_quantity": 0, "average_price": None,
                                       "message": "Insufficient funds"}


def test_a_sandbox_legs_fill_is_its_paper_order(server_factory):
    sandbox = start(server_factory)
    sandbox.tick("IDEA", 10.00)
    trigger_id = sandbox.place(symbol="IDEA", action="BUY", trigger_type="SINGLE", quantity=4, price=9.5,
                               triggerprice_sl=9.5)
    sandbox.tick("IDEA", 9.45)
    (leg,) = sandbox.post("gttorderstatus", trigger_id=trigger_id).json()["data"]["legs"]
    assert leg["fill"] == {"status": "COMPLETE", "filled_quantity": 4, "average_price": 9.5, "message": None}


def test_the_triggered_message_says_what_the_fired_order_bought(server_factory, fake_upstox):
    """A live GTT fires at the fake Upstox; the watcher's pass looks its order up once and the
    phone hears "bought 3 IDEA at 9.70"; gttorderstatus answers from what was kept."""
    from tests.fakes.notify_receiver import NotifyReceiver

    with NotifyReceiver() as receiver:
        server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, OCO_POLL_SECONDS="1",
                                NOTIFY_URLS=receiver.apprise_url)
        key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
        server.start()
        body = {"apikey": key, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC", "quantity": 3,
                "trigger_type": "SINGLE", "price": 9.7, "triggerprice_tg": 9.7}
        trigger_id = requests.post(f"{server.url}/api/v1/placegtt", json=body, timeout=10).json()["trigger_id"]
        fake_upstox.set_order("250101000000999", status="complete", filled_quantity=3, average_price=9.7)
        fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="250101000000999")

        (message,) = receiver.wait_for(1)
        assert message["title"] == "GTT triggered"
        assert message["message"].splitlines()[:2] == [f"BUY 3 IDEA (NSE) above 9.70 — {trigger_id}, order 250101000000999",
                                                       "bought 3 IDEA at 9.70"]
        data = requests.post(f"{server.url}/api/v1/gttorderstatus", json={"apikey": key, "trigger_id": trigger_id},
                             timeout=10).json()["data"]
        assert data["legs"][0]["fill"] == {"status": "COMPLETE", "filled_quantity": 3, "average_price": 9.7,
                                           "message": None}
        assert len(fake_upstox.calls_to("order.details")) == 1  # looked up once, at the fire; then kept
