"""The daily trade limit as a new user meets it (issue 26): the sandbox does not stop someone
trying things out (1,000 a day unless DAILY_TRADE_LIMIT says otherwise; 10 stays the live
default), and a count that `force` took past the limit says how many were forced, in health and
in the page's header ("7 of 5, 2 forced")."""
from __future__ import annotations

import json
import re

import pytest

from openalgo_gtt.config import load_settings
from openalgo_gtt.store.instruments import ensure_instruments

PEPPER = "p" * 40


@pytest.mark.parametrize("environ,limit", [
    ({}, 1000),
    ({"BROKER": "sandbox", "ACCESS_TOKEN": "t"}, 1000),
    ({"ACCESS_TOKEN": "t"}, 10),  # Upstox
    ({"BROKER": "kite", "KITE_API_KEY": "k", "KITE_ACCESS_TOKEN": "t"}, 10),
    ({"DAILY_TRADE_LIMIT": "3"}, 3),
    ({"ACCESS_TOKEN": "t", "DAILY_TRADE_LIMIT": "25"}, 25),
])
def test_the_sandbox_default_is_out_of_the_way_and_the_live_one_stays_10(tmp_path, environ, limit):
    settings = load_settings({"API_KEY_PEPPER": PEPPER, **environ}, tmp_path, read_dotenv=False)
    assert settings.daily_trade_limit == limit


def test_health_and_the_header_say_how_many_trades_were_forced(client, gateway, api_key):
    ensure_instruments(gateway.engine)

    def place(price, **extra):
        body = {"apikey": api_key, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1,
                "triggerprice_tg": price, **extra}
        return client.post("/api/v1/placegttorder", data=json.dumps(body), content_type="application/json")

    client.post("/api/v1/sandbox/ticks", data=json.dumps({"apikey": api_key, "ticks": [
        {"symbol": "IDEA", "exchange": "NSE", "ltp": 9.5}]}), content_type="application/json")
    for i in range(5):  # the settings fixture's limit
        assert place(9.6 + i / 100).status_code == 200
    health = client.get("/api/health").get_json()
    assert (health["today_trades"], health["today_forced_trades"]) == ("5 of 5", 0)
    assert place(9.7).status_code == 429
    for price in (9.71, 9.72):
        assert place(price, force=True).status_code == 200
    health = client.get("/api/health").get_json()
    assert (health["today_trade_count"], health["daily_trade_limit"]) == (7, 5)
    assert (health["today_trades"], health["today_forced_trades"]) == ("7 of 5, 2 forced", 2)

    page = client.get("/").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/ui/signin", data={"apikey": api_key, "csrf_token": token}).status_code == 303
    assert "Trades today: <strong>7 of 5, 2 forced</strong>" in client.get("/ui/header").text
