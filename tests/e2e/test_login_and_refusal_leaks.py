"""Issue 25, item 9, through the real server: unauthenticated login callbacks say nothing of the
configuration, Kite's messages point to Kite's login, and a broker refusal the gateway expects
(no login yet) is one audit row and no traceback in the log."""
from __future__ import annotations

import requests


def test_on_upstox_without_a_token_callbacks_reveal_nothing_and_a_refusal_logs_no_traceback(server_factory):
    server = server_factory(BROKER="upstox", UPSTOX_API_KEY="client-id", UPSTOX_API_SECRET="client-secret",
                            UPSTOX_API_URL="http://127.0.0.1:9", LOG_LEVEL="INFO")
    key = server.cli("apikey", "create", "trader").stdout.strip().splitlines()[-1]
    server.start()
    for path in ("/upstox/callback?code=x&state=forged", "/upstox/callback", "/kite/callback?request_token=x&state=y"):
        answer = requests.get(f"{server.url}{path}", timeout=10)
        assert answer.status_code in (400, 404), answer.text
        assert "UPSTOX_" not in answer.text and "KITE_" not in answer.text and "BROKER" not in answer.text, answer.text
    assert "Unknown login state" in requests.get(f"{server.url}/upstox/callback?state=forged", timeout=10).text

    before = len(server.output())
    for _ in range(3):
        book = requests.post(f"{server.url}/api/v1/gttorderbook", json={"apikey": key}, timeout=10)
        assert book.status_code in (502, 503) and "No Upstox access token" in book.json()["message"], book.text
    log = server.output()[before:]
    assert "Traceback" not in log, log


def test_on_kite_the_callback_reveals_nothing_and_points_to_kites_login(server_factory):
    server = server_factory(BROKER="kite", KITE_API_KEY="kite-app-key", KITE_ACCESS_TOKEN="t" * 32,
                            KITE_API_URL="http://127.0.0.1:9")
    server.start()
    answer = requests.get(f"{server.url}/kite/callback?request_token=x&state=forged", timeout=10)
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert "/kite/login" in message and "/upstox/" not in message and "KITE_API_SECRET" not in message
    upstox = requests.get(f"{server.url}/upstox/callback?code=x&state=forged", timeout=10)
    assert "UPSTOX_" not in upstox.text
