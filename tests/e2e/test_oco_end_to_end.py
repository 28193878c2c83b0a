"""OCO through the real server: the SDK places it, the watcher (polling or woken by Upstox's
webhook) settles it, restarts lose nothing, and only one process watches."""
from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.sdk import openalgo_api


def start(server_factory, fake_upstox, poll: str, **env):
    server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, UPSTOX_TIMEOUT="2",
                            OCO_POLL_SECONDS=poll, **env)
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    return server.start(), key


def place_oco_sell(server, key):
    client = openalgo_api()(api_key=key, host=server.url)
    placed = client.placegttorder(symbol="INFY", exchange="NSE", action="SELL", trigger_type="OCO", product="CNC",
                                  quantity=5, price=0, triggerprice_sl=1480, triggerprice_tg=1620,
                                  stoploss=1478, target=1622)
    assert placed["status"] == "success", placed
    return client, placed["trigger_id"]


def leg_statuses(fake):
    return sorted((float(g["rules"][0]["trigger_price"]), g["rules"][0]["status"]) for g in fake.gtts())


def wait_for(condition, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"not within {timeout}s")


def test_sdk_oco_sell_and_the_poller_cancels_the_other_leg(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox, poll="0.5")
    client, trigger_id = place_oco_sell(server, key)
    places = [g for g in fake_upstox.gtts()]
    assert len(places) == 2 and {g["type"] for g in places} == {"SINGLE"}
    assert {g["rules"][0]["transaction_type"] for g in places} == {"SELL"}
    assert "IMMEDIATE" not in {g["rules"][0]["trigger_type"] for g in places}

    (entry,) = client.gttorderbook()["data"]  # one two-leg entry while both legs live
    assert entry["trigger_id"] == trigger_id and entry["trigger_type"] == "two-leg"
    assert entry["trigger_prices"] == [1480, 1620] and len(entry["legs"]) == 2

    lower = next(g["gtt_order_id"] for g in places if float(g["rules"][0]["trigger_price"]) == 1480)
    fake_upstox.set_rule_status(lower, "ENTRY", "TRIGGERED")
    waited = wait_for(lambda: leg_statuses(fake_upstox) == [(1480, "TRIGGERED"), (1620, "CANCELLED")], timeout=2.0)
    assert waited < 1.5  # within one poll interval (0.5 s) and the work itself
    assert client.gttorderbook()["data"] == []


def test_the_webhook_settles_at_once_without_waiting_for_a_poll(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox, poll="600")
    _, trigger_id = place_oco_sell(server, key)
    upper = next(g["gtt_order_id"] for g in fake_upstox.gtts() if float(g["rules"][0]["trigger_price"]) == 1620)
    fake_upstox.set_rule_status(upper, "ENTRY", "COMPLETED")
    url = server.cli("webhook-url").stdout.strip()
    answer = requests.post(url, json={"update_type": "gtt_order", "gtt_order_id": upper}, timeout=5)
    assert answer.status_code == 200 and answer.json()["settled"] is True
    assert leg_statuses(fake_upstox) == [(1480, "CANCELLED"), (1620, "COMPLETED")]  # at once, no poll
    assert url.rsplit("/", 1)[1] not in server.output()


def test_a_restart_in_the_middle_loses_nothing(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox, poll="600")
    _, trigger_id = place_oco_sell(server, key)
    server.stop(kill=True)  # SIGKILL: no clean shutdown
    lower = next(g["gtt_order_id"] for g in fake_upstox.gtts() if float(g["rules"][0]["trigger_price"]) == 1480)
    fake_upstox.set_rule_status(lower, "ENTRY", "TRIGGERED")  # fires while the gateway is down
    server.start()  # reconciles before it serves
    assert leg_statuses(fake_upstox) == [(1480, "TRIGGERED"), (1620, "CANCELLED")]
    status = requests.post(f"{server.url}/api/v1/gttorderstatus", json={"apikey": key, "trigger_id": trigger_id},
                           timeout=5).json()
    assert status["data"]["status"] == "triggered"


def test_two_worker_processes_never_both_run_the_watcher(server_factory, fake_upstox, tmp_path):
    first, _ = start(server_factory, fake_upstox, poll="0.2", LOG_LEVEL="INFO")
    second = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, OCO_POLL_SECONDS="0.2",
                            LOG_LEVEL="INFO", API_KEY_PEPPER=first.env["API_KEY_PEPPER"])
    second.start()
    time.sleep(1.5)
    holders = [s for s in (first, second) if "holds the lease" in s.output()]
    assert len(holders) == 1
