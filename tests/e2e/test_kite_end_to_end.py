"""The real server (`python run.py`, waitress) with BROKER=kite against the fake Kite, driven by
the openalgo SDK as test_gtt_end_to_end.py drives it against the fake Upstox."""
from __future__ import annotations

import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.sdk import openalgo_api
from tests.e2e.server import RUN_PY
from tests.fakes.fake_kite import FakeKite


@pytest.fixture
def fake_kite():
    with FakeKite() as kite:
        kite.set_price("NSE:INFY", 1550, open=1540)
        kite.set_price("NSE:IDEA", 9.5, open=9.4)
        kite.set_price("NFO:NIFTY26DEC24500CE", 210)
        kite.set_price("NFO:NIFTY26D2224000CE", 180)
        yield kite


def kite_env(fake: FakeKite, **extra: str) -> dict:
    return dict(BROKER="kite", KITE_API_KEY=fake.api_key, KITE_API_SECRET=fake.api_secret,
                KITE_ACCESS_TOKEN=fake.access_token, KITE_API_URL=fake.url, KITE_TIMEOUT="2",
                DAILY_TRADE_LIMIT="20", OCO_POLL_SECONDS="600", **extra)


@pytest.fixture
def live(server_factory, fake_kite):
    server = server_factory(**kite_env(fake_kite))
    loaded = server.cli("instruments", "load")
    assert "NSE_FO" in loaded.stdout and "NSE_INDEX" in loaded.stdout, loaded.stdout  # a report per segment
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    server.start()
    return server, key


def post(server, path: str, body: dict) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/{path}", json=body, timeout=10)


def test_sdk_place_modify_book_status_cancel_on_kite(live, fake_kite):
    server, key = live
    client = openalgo_api()(api_key=key, host=server.url)
    assert requests.get(f"{server.url}/api/health", timeout=5).json()["broker"] == "kite"

    placed = client.placegttorder(symbol="INFY", exchange="NSE", action="BUY", trigger_type="SINGLE",
                                  product="CNC", quantity=1, price=1601, triggerprice_tg=1600)
    assert placed["status"] == "success", placed
    trigger_id = placed["trigger_id"]
    gtt = fake_kite.gtt(trigger_id)
    assert gtt["type"] == "single" and gtt["condition"]["trigger_values"] == [1600]
    assert gtt["condition"]["last_price"] == 1550  # from /quote/ltp, which Kite requires
    assert gtt["orders"][0]["price"] == 1601 and gtt["orders"][0]["product"] == "CNC"  # its own LIMIT price

    modified = client.modifygttorder(trigger_id=trigger_id, symbol="INFY", exchange="NSE", action="BUY",
                                     trigger_type="SINGLE", product="CNC", quantity=2, price=0,
                                     triggerprice_tg=1610)
    assert modified["status"] == "success", modified
    gtt = fake_kite.gtt(trigger_id)
    assert gtt["orders"][0]["quantity"] == 2 and gtt["orders"][0]["price"] == 1610  # price 0: the trigger

    book = client.gttorderbook()
    (entry,) = book["data"]
    assert entry["trigger_id"] == trigger_id and entry["trigger_prices"] == [1610] and entry["status"] == "active"

    cancelled = client.cancelgttorder(trigger_id=trigger_id)
    assert cancelled["status"] == "success", cancelled
    assert fake_kite.gtt(trigger_id)["status"] == "deleted"
    assert client.gttorderbook()["data"] == []


def test_native_oco_is_one_two_leg_gtt(live, fake_kite):
    server, key = live
    client = openalgo_api()(api_key=key, host=server.url)
    placed = client.placegttorder(symbol="INFY", exchange="NSE", action="SELL", trigger_type="OCO", product="CNC",
                                  quantity=3, triggerprice_sl=1500, stoploss=1499, triggerprice_tg=1650, target=1651)
    assert placed["status"] == "success", placed
    (gtt,) = fake_kite.gtts()
    assert gtt["type"] == "two-leg" and gtt["condition"]["trigger_values"] == [1500, 1650]
    assert [(o["transaction_type"], o["price"]) for o in gtt["orders"]] == [("SELL", 1499), ("SELL", 1651)]
    assert len(fake_kite.calls_to("POST", "/gtt/triggers")) == 1  # no pair: one GTT

    (entry,) = client.gttorderbook()["data"]
    assert entry["trigger_id"] == placed["trigger_id"] and entry["trigger_type"] == "two-leg"
    assert entry["trigger_prices"] == [1500, 1650]

    fake_kite.fire(gtt["id"], leg=1, order_status="FAILED", rejection_reason="Insufficient holdings")
    status = post(server, "gttorderstatus", {"apikey": key, "trigger_id": placed["trigger_id"]}).json()
    legs = {leg["role"]: leg for leg in status["data"]["legs"]}
    assert legs["target"]["status"] == "FAILED" and legs["target"]["message"] == "Insufficient holdings"
    assert status["data"]["status"] == "rejected"

    modified = client.modifygttorder(trigger_id=placed["trigger_id"], symbol="INFY", exchange="NSE", action="SELL",
                                     trigger_type="OCO", product="CNC", quantity=3, triggerprice_sl=1490,
                                     triggerprice_tg=1660)
    assert modified["status"] == "error"  # Kite modifies only active GTTs, and says so


def test_option_formats_lot_size_and_refusals(live, fake_kite):
    server, key = live
    base = {"apikey": key, "exchange": "NFO", "action": "BUY", "product": "NRML", "trigger_type": "SINGLE"}
    monthly = post(server, "placegtt", {**base, "symbol": "NIFTY29DEC2624500CE", "quantity": 75,
                                        "triggerprice_tg": 220}).json()
    assert monthly["status"] == "success", monthly
    weekly = post(server, "placegtt", {**base, "symbol": "NIFTY22DEC2624000CE", "quantity": 150,
                                       "triggerprice_sl": 170}).json()
    assert weekly["status"] == "success", weekly
    symbols = sorted(g["condition"]["tradingsymbol"] for g in fake_kite.gtts())
    assert symbols == ["NIFTY26D2224000CE", "NIFTY26DEC24500CE"]

    lot = post(server, "placegtt", {**base, "symbol": "NIFTY29DEC2624500CE", "quantity": 10, "triggerprice_tg": 220})
    assert lot.status_code == 400 and "lot size 75" in lot.json()["message"]
    mis = post(server, "placegtt", {**base, "symbol": "NIFTY29DEC2624500CE", "quantity": 75, "product": "MIS",
                                    "triggerprice_tg": 220})
    assert mis.status_code == 400 and "MIS" in mis.json()["message"] and "Kite" in mis.json()["message"]
    index = post(server, "placegtt", {**base, "exchange": "NSE_INDEX", "symbol": "NIFTY", "quantity": 1,
                                      "triggerprice_tg": 25000})
    assert index.status_code == 400 and "index" in index.json()["message"]
    wrong_side = post(server, "placegtt", {**base, "exchange": "NSE", "symbol": "INFY", "quantity": 1,
                                           "product": "CNC", "triggerprice_tg": 1500})
    assert wrong_side.status_code == 400 and "above the last price 1550" in wrong_side.json()["message"]
    trailing = post(server, "placegtt", {**base, "exchange": "NSE", "symbol": "INFY", "quantity": 1, "product": "CNC",
                                         "trigger_type": "BRACKET", "trailing_gap": 2})
    assert trailing.status_code == 400 and "trailing_gap has no Kite equivalent" in trailing.json()["message"]
    assert len(fake_kite.calls_to("POST", "/gtt/triggers")) == 2


def test_rejected_token_is_a_502_telling_to_log_in(live, fake_kite):
    server, key = live
    fake_kite.access_token = "rotated-elsewhere"
    answer = post(server, "placegtt", {"apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "BUY",
                                       "quantity": 1, "product": "CNC", "trigger_type": "SINGLE",
                                       "triggerprice_tg": 1600})
    assert answer.status_code == 502
    assert answer.json()["message"] == "Kite rejected the access token: log in again"
    assert fake_kite.calls_to("POST", "/gtt/triggers") == []
    health = requests.get(f"{server.url}/api/health", timeout=5).json()
    assert health["token"] == "expired"


def test_seed_routes_take_kite_instrument(live, fake_kite):
    server, key = live
    placed = requests.post(f"{server.url}/api/gtt/place", headers={"X-API-KEY": key}, json={
        "instrument": "NSE:IDEA", "qty": 10, "transaction_type": "BUY", "product": "D"}, timeout=10).json()
    assert placed.get("success") is True, placed
    assert fake_kite.gtt(placed["gtt_id"]) is not None


def test_login_round_trip_and_a_forged_state_refused(server_factory, fake_kite):
    env = kite_env(fake_kite, KITE_LOGIN_URL=f"{fake_kite.url}/connect/login")
    del env["KITE_ACCESS_TOKEN"]  # only the stored login can authorise the calls
    server = server_factory(**env)
    server.cli("instruments", "load")
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    server.start()
    before = post(server, "placegtt", {"apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "BUY",
                                       "quantity": 1, "product": "CNC", "trigger_type": "SINGLE",
                                       "triggerprice_tg": 1600})
    assert before.status_code == 502 and "No Kite access token" in before.json()["message"]

    assert requests.get(f"{server.url}/kite/login", allow_redirects=False, timeout=5).status_code == 403
    started = requests.get(f"{server.url}/kite/login", params={"apikey": key}, allow_redirects=False, timeout=5)
    assert started.status_code == 302
    page = urlsplit(started.headers["Location"])
    query = parse_qs(page.query)
    assert f"{page.scheme}://{page.netloc}{page.path}" == f"{fake_kite.url}/connect/login"
    assert query["v"] == ["3"] and query["api_key"] == [fake_kite.api_key]
    state = parse_qs(query["redirect_params"][0])["state"][0]

    forged = requests.get(f"{server.url}/kite/callback", timeout=5, params={
        "request_token": fake_kite.issue_request_token(), "action": "login", "status": "success",
        "state": "forged-" + state[7:]})
    assert forged.status_code == 400 and "did not start this login" in forged.json()["message"]
    assert fake_kite.calls_to("POST", "/session/token") == []  # refused before Kite was asked

    redirect = {"request_token": fake_kite.issue_request_token("AB1234"), "action": "login", "status": "success",
                "state": state}
    done = requests.get(f"{server.url}/kite/callback", params=redirect, timeout=5)
    assert done.status_code == 200, done.text
    assert done.json()["user_id"] == "AB1234" and done.json()["token_expires_at"].endswith("06:00:00")
    replay = requests.get(f"{server.url}/kite/callback", params=redirect, timeout=5)
    assert replay.status_code == 400 and "already used" in replay.json()["message"]
    audit = server.cli("audit", "--json", "-n", "50").stdout
    assert "/kite/callback" in audit and redirect["request_token"] not in audit and state not in audit

    placed = post(server, "placegtt", {"apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "BUY",
                                       "quantity": 1, "product": "CNC", "trigger_type": "SINGLE",
                                       "triggerprice_tg": 1600})
    assert placed.status_code == 200, placed.text  # with the stored, encrypted login
    health = requests.get(f"{server.url}/api/health", timeout=5).json()
    assert health["token"] == "valid" and health["token_source"] == "login"


def wait_for(predicate, timeout: float = 15.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def test_bracket_exit_appears_once_after_its_entry_fills(server_factory, fake_kite):
    server = server_factory(**{**kite_env(fake_kite), "OCO_POLL_SECONDS": "0.3"})
    server.cli("instruments", "load")
    key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
    server.start()
    body = {"apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": 2, "product": "CNC",
            "trigger_type": "BRACKET"}
    bracket = post(server, "placegtt", body).json()
    assert bracket["status"] == "success", bracket
    # open 1540: entry 1601.60 (above the last price 1550), target 1617.60, stop-loss 1585.60
    assert (bracket["entry"], bracket["target"], bracket["stoploss"]) == (1601.6, 1617.6, 1585.6)
    (entry,) = fake_kite.gtts()
    assert entry["type"] == "single" and entry["condition"]["trigger_values"] == [1601.6]
    assert any("has no bracket GTT" in w for w in bracket["warnings"])

    rejected = post(server, "placegtt", {**body, "quantity": 1}).json()
    rejected_gtt = next(g for g in fake_kite.gtts() if str(g["id"]) == rejected["trigger_id"])

    time.sleep(1.0)  # a few watcher passes while the entries wait: nothing happens
    assert len(fake_kite.gtts()) == 2

    fake_kite.set_price("NSE:INFY", 1602)
    fake_kite.fire(entry["id"], order_status="COMPLETE")
    fake_kite.fire(rejected_gtt["id"], order_status="REJECTED", rejection_reason="Insufficient funds")
    exits = wait_for(lambda: [g for g in fake_kite.gtts() if g["type"] == "two-leg"])
    (exit_gtt,) = exits
    assert exit_gtt["condition"]["trigger_values"] == [1585.6, 1617.6]
    assert [(o["transaction_type"], o["quantity"], o["price"]) for o in exit_gtt["orders"]] == [
        ("SELL", 2, 1585.6), ("SELL", 2, 1617.6)]

    status = post(server, "gttorderstatus", {"apikey": key, "trigger_id": bracket["trigger_id"]}).json()["data"]
    assert status["stages"]["entry"]["status"] == "triggered"
    assert status["stages"]["exit"]["state"] == "placed"
    assert status["stages"]["exit"]["trigger_id"] == str(exit_gtt["id"])
    assert status["stages"]["exit"]["status"] == "active"
    refused = post(server, "gttorderstatus", {"apikey": key, "trigger_id": rejected["trigger_id"]}).json()["data"]
    assert refused["stages"]["exit"]["state"] == "refused"
    assert "Insufficient funds" in refused["stages"]["exit"]["message"]

    time.sleep(1.0)  # more passes, then a restart (which reconciles before serving): still one exit
    server.stop()
    server.start()
    time.sleep(1.0)
    assert len([g for g in fake_kite.gtts() if g["type"] == "two-leg"]) == 1

    # The entry fired: the bracket is not cancelled (a fire cannot be undone), and its exit is left
    # live to protect the position the entry opened; the refusal says so.
    refused = post(server, "cancelgtt", {"apikey": key, "trigger_id": bracket["trigger_id"]})
    assert refused.status_code == 400, refused.text
    assert "its entry fired at " in refused.json()["message"]
    assert f"its exit OCO {exit_gtt['id']} stays at the broker" in refused.json()["message"]
    assert fake_kite.gtt(exit_gtt["id"])["status"] == "active"


def test_python_run_py_login_logs_in_to_kite(server_factory, fake_kite):
    env = kite_env(fake_kite, KITE_LOGIN_URL=f"{fake_kite.url}/connect/login")
    del env["KITE_ACCESS_TOKEN"]
    server = server_factory(**env)
    server.create_store()  # only serving and `db upgrade` make the database; login finds it
    process = subprocess.Popen([sys.executable, str(RUN_PY), "login", "--no-listen", "--timeout", "60"],
                               cwd=server.workdir, env=server.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        page = next(line for line in process.stdout if line.startswith(f"{fake_kite.url}/connect/login"))
        state = parse_qs(parse_qs(urlsplit(page.strip()).query)["redirect_params"][0])["state"][0]
        redirect = (f"http://127.0.0.1:{server.port}/kite/callback?request_token="
                    f"{fake_kite.issue_request_token('AB1234')}&action=login&status=success&state={state}")
        process.stdin.write(redirect + "\n")
        process.stdin.flush()
        output = process.communicate(timeout=60)[0]
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "Logged in to Kite as AB1234" in output and "06:00:00 IST" in output
    server.start()
    health = requests.get(f"{server.url}/api/health", timeout=5).json()
    assert health["token"] == "valid" and health["token_source"] == "login"
