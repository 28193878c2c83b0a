"""What a newcomer saw on the sandbox: the status shows the book's last price, every state
change has a time, an OCO says in words what happened, and sandbox answers are marked."""
from __future__ import annotations

import pytest

from openalgo_gtt.domain.clock import ist_text, utcnow


@pytest.fixture
def sandbox_gateway(gateway):
    from openalgo_gtt.store.instruments import ensure_instruments

    ensure_instruments(gateway.engine)
    gateway.instruments.refresh(force=True)
    return gateway


@pytest.fixture
def post(sandbox_gateway, api_key):
    from openalgo_gtt.app import create_app

    client = create_app(gateway=sandbox_gateway).test_client()

    def call(path, body=None):
        return client.post(f"/api/v1/{path}", json={"apikey": api_key, **(body or {})})

    return call


def tick(post, ltp, symbol="IDEA"):
    answer = post("sandbox/ticks", {"ticks": [{"symbol": symbol, "exchange": "NSE", "ltp": ltp}]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["mode"] == "analyze"
    return answer.get_json()["fired"]


def place(post, **order):
    answer = post("placegtt", {"symbol": "IDEA", "exchange": "NSE", "product": "CNC", "quantity": 1,
                               "action": "BUY", **order})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def status(post, trigger_id):
    answer = post("gttorderstatus", {"trigger_id": trigger_id})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["data"]


def book(post, **body):
    return post("gttorderbook", body).get_json()["data"]


# -- 1. the status quotes the last price as the book does ---------------------------------------

def test_the_status_shows_the_last_price_the_book_shows(post):
    tick(post, 9.50)
    single = place(post, trigger_type="SINGLE", triggerprice_tg=9.60)["trigger_id"]
    oco = place(post, trigger_type="OCO", action="SELL", triggerprice_sl=9.0, triggerprice_tg=10.0)["trigger_id"]
    (book_single,) = [e for e in book(post) if e["trigger_id"] == single]
    assert book_single["last_price"] == 9.5
    assert status(post, single)["last_price"] == 9.5
    assert status(post, oco)["last_price"] == 9.5


# -- 2. every state change has a time -----------------------------------------------------------

def test_a_cancelled_single_shows_when_it_was_cancelled(post, sandbox_gateway):
    tick(post, 9.50)
    trigger_id = place(post, trigger_type="SINGLE", triggerprice_tg=9.60)["trigger_id"]
    assert post("cancelgtt", {"trigger_id": trigger_id}).status_code == 200
    recorded = sandbox_gateway.orders.get(trigger_id)
    entry = status(post, trigger_id)
    assert entry["status"] == "cancelled"
    assert entry["updated_at"] != "" and entry["updated_at"] >= ist_text(recorded.cancelled_at)
    (listed,) = [e for e in book(post, status="all") if e["trigger_id"] == trigger_id]
    assert listed["updated_at"] == entry["updated_at"]


def test_a_triggered_bracket_shows_when_it_fired(post):
    tick(post, 9.50)
    trigger_id = place(post, trigger_type="BRACKET", entry_mode="manual", entry_value=9.60)["trigger_id"]
    assert status(post, trigger_id)["updated_at"] == ""  # never changed yet (OpenAlgo's book: "")
    assert tick(post, 9.61)
    entry = status(post, trigger_id)
    assert entry["legs"][0]["status"] != "SCHEDULED"
    assert entry["updated_at"] != "" and entry["updated_at"] >= entry["created_at"]
    (listed,) = [e for e in book(post, status="all") if e["trigger_id"] == trigger_id]
    assert listed["updated_at"] == entry["updated_at"]


def test_a_fired_oco_shows_when_it_fired(post):
    tick(post, 9.50)
    trigger_id = place(post, trigger_type="OCO", action="SELL", triggerprice_sl=9.0, triggerprice_tg=10.0)["trigger_id"]
    assert tick(post, 10.01)
    entry = status(post, trigger_id)
    assert entry["status"] == "triggered" and entry["updated_at"] != ""


# -- 3. an OCO says what happened ---------------------------------------------------------------

def test_the_oco_leg_the_gateway_cancelled_says_why(post, sandbox_gateway):
    tick(post, 9.50)
    trigger_id = place(post, trigger_type="OCO", action="SELL", triggerprice_sl=9.0, triggerprice_tg=10.0)["trigger_id"]
    lower, upper = sandbox_gateway.orders.get(trigger_id).broker_ids
    assert tick(post, 10.01)
    entry = status(post, trigger_id)
    legs = {leg["role"]: leg for leg in entry["legs"]}
    assert legs["stoploss"]["status"] == "CANCELLED"
    assert legs["stoploss"]["message"] == f"cancelled by the gateway: the other leg ({upper}) fired"
    assert "by the user" not in (legs["stoploss"]["message"] or "")
    assert entry["message"] == f"the target leg {upper} fired; the stop-loss leg {lower} was cancelled"
    assert "SCHEDULED" not in entry["message"]
    (listed,) = [e for e in book(post, status="all") if e["trigger_id"] == trigger_id]
    # The status adds each fired leg's fill (its order at the broker); otherwise the book says the same.
    assert listed["message"] == entry["message"]
    assert listed["legs"] == [{k: v for k, v in leg.items() if k != "fill"} for leg in entry["legs"]]
    assert [leg.get("fill", {}).get("status") for leg in entry["legs"]] == [None, "COMPLETE"]


def test_a_pair_cancelled_by_its_owner_still_says_so(post):
    tick(post, 9.50)
    trigger_id = place(post, trigger_type="OCO", action="SELL", triggerprice_sl=9.0, triggerprice_tg=10.0)["trigger_id"]
    assert post("cancelgtt", {"trigger_id": trigger_id}).status_code == 200
    entry = status(post, trigger_id)
    assert entry["status"] == "cancelled"
    assert all("gateway" not in (leg["message"] or "") for leg in entry["legs"])


# -- 4. sandbox answers are marked as OpenAlgo's analyzer marks them ----------------------------

def test_every_sandbox_success_answer_says_analyze(post):
    tick(post, 9.50)
    placed = place(post, trigger_type="SINGLE", triggerprice_tg=9.60)
    trigger_id = placed["trigger_id"]
    answers = [
        placed,
        post("modifygtt", {"trigger_id": trigger_id, "symbol": "IDEA", "exchange": "NSE", "product": "CNC",
                           "quantity": 2, "action": "BUY", "trigger_type": "SINGLE",
                           "triggerprice_tg": 9.70}).get_json(),
        post("gttorderbook").get_json(),
        post("gttorderstatus", {"trigger_id": trigger_id}).get_json(),
        post("cancelgtt", {"trigger_id": trigger_id}).get_json(),
        post("ping").get_json(),
    ]
    for answer in answers:
        assert answer["status"] == "success", answer
        assert answer["mode"] == "analyze", answer
    refused = post("gttorderstatus", {"trigger_id": "GTT-NOPE"}).get_json()
    assert refused["status"] == "error" and "mode" not in refused


def test_upstox_answers_carry_no_mode(upstox_client, upstox_key):
    answer = upstox_client.post("/api/v1/ping", json={"apikey": upstox_key}).get_json()
    assert answer["status"] == "success" and "mode" not in answer
    answer = upstox_client.post("/api/v1/gttorderbook", json={"apikey": upstox_key}).get_json()
    assert answer["status"] == "success" and "mode" not in answer


def test_on_upstox_a_settled_pair_shows_when_the_watcher_settled_it(upstox_client, upstox_key, upstox_gateway,
                                                                      fake_upstox):
    from tests.integration.test_oco import OCO_SELL

    def post(path, body=None):
        return upstox_client.post(f"/api/v1/{path}", json={"apikey": upstox_key, **(body or {})})

    trigger_id = post("placegtt", OCO_SELL).get_json()["trigger_id"]
    lower, upper = upstox_gateway.orders.get(trigger_id).broker_ids
    fake_upstox.set_rule_status(upper, "ENTRY", "TRIGGERED", order_id="250101000001")
    assert upstox_gateway.watcher.sync().pairs_settled == [trigger_id]
    legs = upstox_gateway.orders.legs_by_broker_id([lower, upper])
    settled = ist_text(max(leg.updated_at for leg in legs.values()))
    entry = post("gttorderstatus", {"trigger_id": trigger_id}).get_json()["data"]
    assert entry["updated_at"] >= settled and entry["updated_at"] != ""
    assert entry["message"] == f"the target leg {upper} fired; the stop-loss leg {lower} was cancelled"
    (listed,) = post("gttorderbook", {"status": "all"}).get_json()["data"]
    assert listed["updated_at"] == entry["updated_at"]


def test_on_upstox_a_single_cancelled_in_the_app_and_a_fired_bracket_show_when(upstox_client, upstox_key,
                                                                               upstox_gateway, fake_upstox):
    def post(path, body=None):
        return upstox_client.post(f"/api/v1/{path}", json={"apikey": upstox_key, **(body or {})})

    order = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "product": "CNC"}
    single = post("placegtt", {**order, "trigger_type": "SINGLE", "triggerprice_tg": 9.61}).get_json()["trigger_id"]
    bracket = post("placegtt", {**order, "trigger_type": "BRACKET", "entry_mode": "manual",
                                "entry_value": 9.60}).get_json()["trigger_id"]
    fake_upstox.set_rule_status(single, "ENTRY", "CANCELLED")  # in the Upstox app
    fake_upstox.set_rule_status(bracket, "ENTRY", "TRIGGERED", order_id="251202000777")
    before = ist_text(utcnow())
    upstox_gateway.watcher.sync()
    for trigger_id, state in ((single, "cancelled"), (bracket, "active")):  # the bracket's exits still wait
        entry = post("gttorderstatus", {"trigger_id": trigger_id}).get_json()["data"]
        assert entry["status"] == state and entry["updated_at"] >= before, entry
        (listed,) = [e for e in post("gttorderbook", {"status": "all"}).get_json()["data"]
                     if e["trigger_id"] == trigger_id]
        assert listed["updated_at"] == entry["updated_at"]
