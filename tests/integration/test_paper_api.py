"""The paper account's routes through the Flask app on the sandbox: cancelling an open paper
order by hand (OpenAlgo's cancelorder), and a modify's funds check taking the places' turn."""
from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select

from openalgo_gtt.store.instruments import ensure_instruments
from openalgo_gtt.store.models import AuditRecord


@pytest.fixture
def settings(settings):
    return replace(settings, sandbox_capital=Decimal("10000"))


@pytest.fixture
def api(client, gateway, api_key):
    ensure_instruments(gateway.engine)

    def send(path, **fields):
        return client.post(f"/api/v1/{path}", data=json.dumps({"apikey": api_key, **fields}),
                           content_type="application/json")
    return send


def tick(api, ltp) -> list:
    answer = api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": ltp}])
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["fired"]


def buy_above(api, price, quantity) -> str:
    """A CNC BUY that fires above `price`, its child a LIMIT at `price`."""
    answer = api("placegtt", exchange="NSE", symbol="IDEA", product="CNC", action="BUY", trigger_type="SINGLE",
                 quantity=quantity, price=price, triggerprice_tg=price)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["trigger_id"]


def funds(api) -> tuple[str, str]:
    data = api("funds").get_json()["data"]
    return data["utiliseddebits"], data["availablecash"]


def audit_rows(gateway, request_id: str) -> int:
    with gateway.sessions() as session:
        return len(session.scalars(select(AuditRecord).where(AuditRecord.request_id == request_id)).all())


def test_an_open_paper_order_is_cancelled_by_hand_and_its_margin_released(api, gateway):
    tick(api, 100)
    trigger_id = buy_above(api, 101, 10)  # blocks 10 x 101
    (fired,) = tick(api, 102)  # fired above its 101 limit: the order rests open
    order_id = fired["order_id"]
    assert funds(api) == ("1010.00", "8990.00")  # held by the open order now

    answer = api("cancelorder", orderid=order_id, strategy="Python")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["status"], body["mode"], body["orderid"]) == ("success", "analyze", order_id)
    (order,) = api("orderbook").get_json()["data"]["orders"]
    assert (order["orderid"], order["order_status"]) == (order_id, "cancelled")
    assert api("orderbook").get_json()["data"]["statistics"]["total_open_orders"] == 0
    assert funds(api) == ("0.00", "10000.00")
    tick(api, 100)  # would have reached its limit: a cancelled order never fills
    assert api("tradebook").get_json()["data"] == [] and api("positionbook").get_json()["data"] == []
    status = api("gttorderstatus", trigger_id=trigger_id).get_json()
    assert status["data"]["legs"][0]["fill"]["status"] == "CANCELLED", status
    assert status["data"]["legs"][0]["fill"]["message"] == "cancelled by hand (cancelorder)"

    again = api("cancelorder", orderid=order_id)
    assert again.status_code == 400, again.get_json()
    assert again.get_json()["message"] == f"order {order_id} cannot be cancelled: it is cancelled"
    assert audit_rows(gateway, again.headers["X-Request-ID"]) == 1


def test_a_complete_order_cannot_be_cancelled_and_an_unknown_one_is_404(api, gateway):
    tick(api, 100)
    buy_above(api, 101, 2)
    (fired,) = tick(api, 101)  # fires, and 101 reaches the 101 limit at once: complete
    done = api("cancelorder", orderid=fired["order_id"])
    assert done.status_code == 400
    assert done.get_json()["message"] == f"order {fired['order_id']} cannot be cancelled: it is complete"
    assert (done.get_json()["status"], done.get_json()["order_status"]) == ("error", "complete")
    assert funds(api) == ("202.00", "9798.00")  # the position's margin is untouched

    unknown = api("cancelorder", orderid="261207999999999")
    assert unknown.status_code == 404
    assert unknown.get_json() == {"status": "error", "message": "No paper order with orderid 261207999999999",
                                  "request_id": unknown.headers["X-Request-ID"]}
    for answer in (done, unknown):
        assert audit_rows(gateway, answer.headers["X-Request-ID"]) == 1


def test_bad_cancelorder_bodies_are_clear_json_errors_each_audited_once(client, api, gateway):
    answers = []
    for fields, status, says in (({}, 400, "orderid"), ({"orderid": 261207000000001}, 400, "orderid"),
                                 ({"orderid": ""}, 400, "orderid"), ({"orderid": ["1"]}, 400, "orderid"),
                                 ({"orderid": "1" * 65}, 400, "orderid")):
        answer = api("cancelorder", **fields)
        assert answer.status_code == status, (fields, answer.get_json())
        assert answer.get_json()["status"] == "error" and says in answer.get_json()["message"], answer.get_json()
        answers.append(answer)
    wrong = client.post("/api/v1/cancelorder", data=json.dumps({"apikey": "0" * 64, "orderid": "1"}),
                        content_type="application/json")
    assert (wrong.status_code, wrong.get_json()["message"]) == (403, "Invalid openalgo apikey")
    garbage = client.post("/api/v1/cancelorder", data="not json", content_type="application/json")
    assert garbage.status_code == 400 and garbage.get_json()["status"] == "error"
    for answer in answers + [wrong, garbage]:
        assert audit_rows(gateway, answer.headers["X-Request-ID"]) == 1


def test_on_a_live_broker_cancelorder_answers_501_sandbox_only(upstox_client, upstox_key, fake_upstox):
    answer = upstox_client.post("/api/v1/cancelorder", data=json.dumps({"apikey": upstox_key, "orderid": "1"}),
                                content_type="application/json")
    assert answer.status_code == 501
    assert answer.get_json()["message"].startswith("sandbox only: ")
    assert fake_upstox.calls == []


def modify(api, trigger_id, price, quantity):
    return api("modifygtt", trigger_id=trigger_id, exchange="NSE", symbol="IDEA", product="CNC", action="BUY",
               trigger_type="SINGLE", quantity=quantity, price=price, triggerprice_tg=price)


def test_a_place_while_a_modify_is_at_the_broker_cannot_spend_what_the_modify_counted_on(app, api, gateway,
                                                                                         api_key, monkeypatch):
    """The place runs at the worst moment: the modify's funds check has passed and its broker
    call has begun but is not recorded yet. Each fits the account alone (9,000 and 4,000 of
    10,000 with the 5,000 the trigger blocks now counted free); together they do not."""
    tick(api, 9.5)
    trigger_id = buy_above(api, 10, 500)  # blocks 5,000
    broker_modify = gateway.broker.modify_gtt
    during = []

    def place_meanwhile(gtt_id, request):
        other = app.test_client().post("/api/v1/placegtt", content_type="application/json", data=json.dumps({
            "apikey": api_key, "exchange": "NSE", "symbol": "IDEA", "product": "CNC", "action": "BUY",
            "trigger_type": "SINGLE", "quantity": 400, "price": 10, "triggerprice_tg": 10}))
        during.append(other)
        return broker_modify(gtt_id, request)

    monkeypatch.setattr(gateway.broker, "modify_gtt", place_meanwhile)
    modified = modify(api, trigger_id, 10, 900)  # 9,000
    (placed,) = during
    assert modified.status_code == 200, modified.get_json()
    assert placed.status_code == 400, placed.get_json()  # not both
    assert placed.get_json()["message"] == "insufficient funds: needs ₹4000.00, available ₹1000.00"
    assert funds(api) == ("9000.00", "1000.00")


def test_a_modify_the_broker_refuses_gives_back_the_margin_it_held(api, gateway, monkeypatch):
    from openalgo_gtt.brokers.errors import InputRejected

    tick(api, 9.5)
    trigger_id = buy_above(api, 10, 500)

    def refuse(gtt_id, request):
        raise InputRejected("refused by the broker", code="TEST", http_status=400, may_have_reached=False)

    monkeypatch.setattr(gateway.broker, "modify_gtt", refuse)
    assert modify(api, trigger_id, 10, 900).status_code == 400
    assert funds(api) == ("5000.00", "5000.00")  # the 9,000 it held is given back
    monkeypatch.undo()
    assert api("placegtt", exchange="NSE", symbol="IDEA", product="CNC", action="BUY", trigger_type="SINGLE",
               quantity=500, price=10, triggerprice_tg=10).status_code == 200
