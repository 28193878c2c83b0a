"""The real server (`python run.py`, waitress) against the fake Upstox, driven by the openalgo
SDK, raw TradingView-style webhooks and the seed engine's routes."""
from __future__ import annotations

import threading

import pytest
import requests

from tests.e2e.sdk import openalgo_api
from tests.waiting import until

IDEA = "NSE_EQ|INE669E01016"


@pytest.fixture
def live(server_factory, fake_upstox):
    # A long poll: these tests count the broker calls each request makes, not the watcher's.
    server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url,
                            UPSTOX_TIMEOUT="2", DAILY_TRADE_LIMIT="5", OCO_POLL_SECONDS="600")
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    server.start()
    return server, key


def test_sdk_place_modify_book_status_cancel(live, fake_upstox):
    server, key = live
    client = openalgo_api()(api_key=key, host=server.url)
    assert requests.get(f"{server.url}/api/health", timeout=5).json()["broker"] == "upstox"

    placed = client.placegttorder(symbol="IDEA", exchange="NSE", action="BUY", trigger_type="SINGLE",
                                  product="CNC", quantity=1, price=9.55, triggerprice_tg=9.55)
    assert placed["status"] == "success", placed
    trigger_id = placed["trigger_id"]
    assert [c[1] for c in fake_upstox.calls] == ["/v3/order/gtt/place"]

    modified = client.modifygttorder(trigger_id=trigger_id, symbol="IDEA", exchange="NSE", action="BUY",
                                     trigger_type="SINGLE", product="CNC", quantity=2, price=9.7,
                                     triggerprice_tg=9.7)
    assert modified["status"] == "success", modified
    assert fake_upstox.gtt(trigger_id)["quantity"] == 2

    book = client.gttorderbook()
    assert book["status"] == "success"
    (entry,) = book["data"]
    assert entry["trigger_id"] == trigger_id and entry["trigger_prices"] == [9.7]
    assert entry["legs"][0]["quantity"] == 2

    status = requests.post(f"{server.url}/api/v1/gttorderstatus",
                           json={"apikey": key, "trigger_id": trigger_id}, timeout=5).json()
    assert status["data"]["legs"][0]["status"] == "SCHEDULED"

    cancelled = client.cancelgttorder(trigger_id=trigger_id)
    assert cancelled["status"] == "success", cancelled
    assert client.gttorderbook()["data"] == []

    wrong = openalgo_api()(api_key="0" * 64, host=server.url).gttorderbook()
    assert wrong["status"] == "error" and wrong["message"] == "Invalid openalgo apikey"


def test_tradingview_text_plain_alert_and_bad_alerts(live, fake_upstox):
    server, key = live
    alert = ('{"apikey": "%s", "symbol": "IDEA", "exchange": "NSE", "action": "buy", "quantity": "1", '
             '"trigger_type": "SINGLE", "triggerprice_tg": "9.60", "price": "9.60"}') % key
    placed = requests.post(f"{server.url}/api/v1/placegtt", data=alert,
                           headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=5)
    assert placed.status_code == 200, placed.text
    not_json = requests.post(f"{server.url}/api/v1/placegtt", data="BUY IDEA now",
                             headers={"Content-Type": "text/plain"}, timeout=5)
    assert not_json.status_code == 400 and not_json.json()["status"] == "error"
    unknown = requests.post(f"{server.url}/api/v1/placegtt", data=alert.replace('"IDEA"', '"{{ticker}}"'),
                            headers={"Content-Type": "text/plain"}, timeout=5)
    assert unknown.status_code == 404  # an unfilled placeholder is a 4xx: TradingView will not re-send
    assert len(fake_upstox.calls_to("gtt.place")) == 1


def test_bracket_and_seed_routes(live, fake_upstox):
    server, key = live
    bracket = requests.post(f"{server.url}/api/v1/placegtt", json={
        "apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "SELL", "quantity": 5,
        "trigger_type": "BRACKET", "product": "CNC", "trailing_gap": 2}, timeout=5).json()
    assert bracket["status"] == "success", bracket
    # open 1540: entry 1540 x 0.96 = 1478.40 (below the last price 1550), target 1463.62, stop 1493.18
    assert (bracket["entry"], bracket["target"], bracket["stoploss"]) == (1478.40, 1463.60, 1493.20)
    rules = {r["strategy"]: r for r in fake_upstox.gtt(bracket["trigger_id"])["rules"]}
    assert rules["ENTRY"]["trigger_type"] == "BELOW" and float(rules["STOPLOSS"]["trailing_gap"]) == 2.0

    legacy = requests.post(f"{server.url}/api/gtt/place", headers={"X-API-KEY": key}, json={
        "instrument": IDEA, "symbol_key": "NSE_EQ:IDEA", "qty": 10, "transaction_type": "BUY", "product": "I"},
        timeout=5).json()
    assert legacy["success"] is True and legacy["trade_count"] == 2
    assert fake_upstox.gtt(legacy["gtt_id"])["product"] == "I"
    listed = requests.get(f"{server.url}/api/gtt/orders", params={"apikey": key, "status": "ACTIVE"}, timeout=5).json()
    assert listed["count"] == 2
    cancel = requests.get(f"{server.url}/api/gtt/cancel", params={"gtt_id": legacy["gtt_id"]},
                          headers={"X-API-KEY": key}, timeout=5).json()
    assert cancel["success"] is True and cancel["status"] == "CANCELLED"


def test_daily_limit_holds_under_30_concurrent_places(live, fake_upstox):
    server, key = live
    answers: list[requests.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(30)

    def place(n: int) -> None:
        start.wait()
        response = requests.post(f"{server.url}/api/v1/placegtt", json={
            "apikey": key, "symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": 1,
            "trigger_type": "SINGLE", "triggerprice_tg": round(9.6 + n / 100, 2)}, timeout=30)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=place, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in answers)
    # Placed at once, refused at once for the limit, or queued (a burst beyond the order rate) and
    # refused for the limit when its turn comes: never more than five placed.
    assert set(statuses) <= {200, 202, 429} and statuses.count(200) <= 5
    until(lambda: requests.get(f"{server.url}/api/health", timeout=5).json()["queue"]["length"] == 0,
          "the queue to be sent")
    assert len(fake_upstox.calls_to("gtt.place")) == 5
    assert sorted(r.json()["trade_count"] for r in answers if r.status_code == 200) == list(
        range(1, statuses.count(200) + 1))
    health = requests.get(f"{server.url}/api/health", timeout=5).json()
    assert health["today_trade_count"] == 5
