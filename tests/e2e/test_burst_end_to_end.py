"""A candle close: 100 TradingView alerts at once, through the real server, against a fake Upstox
that counts when each call arrives (in a process of its own, so the test's own 25 threads never
delay the moment it notes). Every caller hears 2xx within TradingView's 3 seconds (placed,
or queued), every alert becomes exactly one GTT within 15 seconds, and no second at the broker
sees more than its 10 order calls."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

import requests

from tests.e2e.server import ServerProcess
from tests.fakes.remote_upstox import RemoteFake

ALERTS, THREADS = 100, 25


def _alert(key: str, n: int) -> str:
    # Distinct alerts (each its own trigger price): an identical body would be a duplicate.
    return json.dumps({"apikey": key, "symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": 1,
                       "trigger_type": "SINGLE", "triggerprice_tg": f"{10 + n / 100:.2f}"})


def test_a_candle_close_of_100_alerts_is_placed_whole_and_paced(tmp_path):
    fake = RemoteFake(token="burst-token").start()
    fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "9.50", open="9.50")
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'burst.db'}", ACCESS_TOKEN=fake.token,
                           UPSTOX_API_URL=fake.url, DAILY_TRADE_LIMIT="1000", OCO_POLL_SECONDS="0.5")
    key = server.cli("apikey", "create", "tradingview").stdout.strip().splitlines()[-1]
    server.start()
    try:
        answers: list[tuple[int, float, dict]] = []
        lock = threading.Lock()
        start = threading.Barrier(THREADS)

        def send(alerts: list[int]) -> None:
            http = requests.Session()
            start.wait()
            for n in alerts:
                began = time.monotonic()
                response = http.post(f"{server.url}/api/v1/placegtt", data=_alert(key, n),
                                     headers={"Content-Type": "text/plain"}, timeout=10)
                with lock:
                    answers.append((response.status_code, time.monotonic() - began, response.json()))

        threads = [threading.Thread(target=send, args=(list(range(i, ALERTS, THREADS)),)) for i in range(THREADS)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert len(answers) == ALERTS
        assert all(status in (200, 202) for status, _, _ in answers), Counter(s for s, _, _ in answers)
        assert max(took for _, took, _ in answers) < 3.0
        assert any(status == 202 for status, _, _ in answers)  # a real burst: some were queued

        deadline = time.monotonic() + 15
        while len(fake.gtts()) < ALERTS and time.monotonic() < deadline:
            time.sleep(0.1)
        prices = Counter(gtt["rules"][0]["trigger_price"] for gtt in fake.gtts())
        assert len(prices) == ALERTS and set(prices.values()) == {1}  # each alert exactly one GTT

        arrivals = sorted(at for _, _, at in fake.calls_to("gtt.place"))
        assert len(arrivals) == ALERTS
        busiest = max(sum(1 for t in arrivals if s <= t < s + 1.0) for s in arrivals)
        assert busiest <= 10

        book = requests.post(f"{server.url}/api/v1/gttorderbook", json={"apikey": key}, timeout=10).json()
        assert len(book["data"]) == ALERTS

        queued = next(body for status, _, body in answers if status == 202)
        status = requests.post(f"{server.url}/api/v1/gttorderstatus",
                               json={"apikey": key, "request_id": queued["request_id"]}, timeout=10).json()
        assert status["status"] == "success" and status["data"]["trigger_id"].startswith("GTT-")
        health = requests.get(f"{server.url}/api/health", timeout=10).json()
        assert health["queue"]["length"] == 0 and health["queue"]["sent_last_minute"] >= 1
    finally:
        server.stop()
        fake.stop()
