"""SANDBOX_PRICES=upstox (issue 27): the sandbox's prices come from the fake Upstox's LTP quote,
read about once a second for every watched symbol in one call; GTTs fire on them with no pushed
tick; nothing ever reaches Upstox's order or GTT routes; health says the source and the age,
and a rejected token makes the prices stale (GTTs kept) until a token works again."""
from __future__ import annotations

import time

import requests

from tests.e2e.sdk import openalgo_api
from tests.e2e.test_sandbox_end_to_end import Sandbox
from tests.fakes.notify_receiver import NotifyReceiver
from tests.waiting import until

IDEA = "NSE_EQ|INE669E01016"
INFY = "NSE_EQ|INE009A01021"


def start_live(server_factory, fake_upstox, **env) -> Sandbox:
    server = server_factory(BROKER="sandbox", SANDBOX_PRICES="upstox", ACCESS_TOKEN=fake_upstox.token,
                            UPSTOX_API_URL=fake_upstox.url, OCO_POLL_SECONDS="600",
                            RATE_LIMIT_ENABLED="false", **env)  # the waits below poll the API fast
    key = server.cli("apikey", "create", "live").stdout.strip().splitlines()[-1]
    return Sandbox(server.start(), key)


def prices(sandbox) -> dict:
    return requests.get(f"{sandbox.server.url}/api/health", timeout=5).json()["prices"]


def test_a_sandbox_gtt_fires_on_upstoxs_quote_with_no_pushed_tick_and_nothing_reaches_its_gtt_api(
        server_factory, fake_upstox):
    sandbox = start_live(server_factory, fake_upstox)
    client = openalgo_api()(api_key=sandbox.key, host=sandbox.server.url)
    # No tick was ever pushed: the place reads IDEA's price (9.50) from the quote API first.
    placed = client.placegttorder(symbol="IDEA", exchange="NSE", action="BUY", trigger_type="SINGLE",
                                  product="CNC", quantity=10, price=9.40, triggerprice_sl=9.40)
    assert placed["status"] == "success" and placed["mode"] == "analyze", placed
    trigger_id = placed["trigger_id"]
    until(lambda: prices(sandbox)["last_price_at"] is not None, "a live price")
    assert sandbox.status(trigger_id) == "active"

    fake_upstox.set_price(IDEA, "IDEA", "NSE_EQ", "9.35")  # Upstox's price moves
    until(lambda: sandbox.status(trigger_id) == "triggered", "the GTT firing on the quote")
    (position,) = client.positionbook()["data"]
    assert (position["symbol"], position["quantity"], position["average_price"]) == ("IDEA", 10, "9.40")
    (trade,) = client.tradebook()["data"]
    assert (trade["action"], trade["average_price"], trade["quantity"]) == ("BUY", 9.4, 10)
    fake_upstox.set_price(IDEA, "IDEA", "NSE_EQ", "9.60")  # the open position stays watched
    until(lambda: client.positionbook()["data"][0]["pnl"] == 2.0, "P&L marked to the live price")

    paths = {path for _method, path, _at in fake_upstox.calls}
    assert paths == {"/v3/market-quote/ltp"}, paths  # never an order or GTT route
    health = prices(sandbox)
    assert health["source"] == "upstox" and health["stale_since"] is None and health["error"] is None
    assert health["age_seconds"] is not None and health["age_seconds"] < 5


def test_many_watched_symbols_cost_one_quote_call_a_second(server_factory, fake_upstox):
    sandbox = start_live(server_factory, fake_upstox)
    for symbol, trigger in (("IDEA", 9.0), ("INFY", 1500)):
        sandbox.place(symbol=symbol, action="BUY", trigger_type="SINGLE", quantity=1, price=trigger,
                      triggerprice_sl=trigger)
    until(lambda: prices(sandbox)["last_price_at"] is not None, "a live price")
    fake_upstox.clear_calls()
    time.sleep(3.2)  # the real reading thread, paced: watching it is the point here
    calls = fake_upstox.calls_to("quote.ltp")
    assert 2 <= len(calls) <= 4, calls  # about one a second, both symbols in each
    gaps = [b[2] - a[2] for a, b in zip(calls, calls[1:])]
    assert all(gap >= 0.9 for gap in gaps), gaps


def test_a_rejected_token_makes_prices_stale_keeps_the_gtts_and_prices_resume_with_a_token(
        server_factory, fake_upstox):
    with NotifyReceiver() as receiver:
        rejected_token_case(start_live(server_factory, fake_upstox, NOTIFY_URLS=receiver.apprise_url), fake_upstox,
                            receiver)


def rejected_token_case(sandbox, fake_upstox, receiver):
    trigger_id = sandbox.place(symbol="IDEA", action="BUY", trigger_type="SINGLE", quantity=1, price=9.0,
                               triggerprice_sl=9.0)
    until(lambda: prices(sandbox)["last_price_at"] is not None, "a live price")
    good = fake_upstox.token
    fake_upstox.token = "another-token"  # Upstox now rejects the gateway's token (UDAPI100050)
    until(lambda: prices(sandbox)["stale_since"] is not None, "the prices going stale")
    assert "token" in prices(sandbox)["error"].lower()
    (told,) = receiver.wait_for(1)
    assert "token" in (told["title"] + told["message"]).lower(), told  # the trader hears, once
    fake_upstox.set_price(IDEA, "IDEA", "NSE_EQ", "8.90")  # a move the sandbox cannot see
    # Two whole reads after the move, counted, not timed: the reader reads one call at a time (one
    # watched symbol, one call; a rejected token is not retried), so once the third quote call
    # after the move has arrived, the two before it have been answered and dealt with.
    seen = len(fake_upstox.calls_to("quote.ltp"))
    until(lambda: len(fake_upstox.calls_to("quote.ltp")) >= seen + 3, "two more reads with the rejected token")
    assert sandbox.status(trigger_id) == "active"  # kept, not fired on a price it never saw
    fake_upstox.token = good
    until(lambda: sandbox.status(trigger_id) == "triggered", "prices resuming with the token")
    assert prices(sandbox)["stale_since"] is None
    assert sum("token" in (m["title"] + m["message"]).lower() for m in receiver.wait_for(2)) == 1


def test_a_symbol_the_quote_api_does_not_know_is_refused_clearly_and_reported_once(server_factory, fake_upstox):
    sandbox = start_live(server_factory, fake_upstox)
    answer = sandbox.post("placegtt", exchange="NSE", product="CNC", symbol="RELIANCE", action="BUY",
                          trigger_type="SINGLE", quantity=1, price=1000, triggerprice_sl=1000)
    assert answer.status_code == 409 and "no price for RELIANCE" in answer.json()["message"], answer.text
    unknown = prices(sandbox)["unknown_instruments"]
    assert len(unknown) == 1 and unknown[0].startswith("NSE_EQ|")


def test_a_sandbox_on_kites_master_fires_on_kites_quotes(server_factory, tmp_path):
    from tests.fakes.fake_kite import FakeKite

    with FakeKite() as kite:
        kite.set_price("NSE:INFY", 1550)
        server = server_factory(BROKER="sandbox", SANDBOX_PRICES="kite", KITE_API_KEY=kite.api_key,
                                KITE_ACCESS_TOKEN=kite.access_token, KITE_API_URL=kite.url, OCO_POLL_SECONDS="600",
                                RATE_LIMIT_ENABLED="false")
        master = tmp_path / "instruments.csv"
        master.write_bytes(kite._csv(""))
        assert "loaded" in server.cli("instruments", "load", "--kite", str(master)).stdout
        key = server.cli("apikey", "create", "live").stdout.strip().splitlines()[-1]
        sandbox = Sandbox(server.start(), key)
        trigger_id = sandbox.place(symbol="INFY", action="BUY", trigger_type="SINGLE", quantity=3, price=1500,
                                   triggerprice_sl=1500)  # the price read first from Kite's quote
        kite.set_price("NSE:INFY", 1495)
        until(lambda: sandbox.status(trigger_id) == "triggered", "the GTT firing on Kite's quote")
        (position,) = sandbox.post("positionbook").json()["data"]
        assert (position["symbol"], position["quantity"], position["average_price"]) == ("INFY", 3, "1500.00")
        assert {path for _method, path in kite.calls} == {"/quote/ltp"}, kite.calls  # never an order or GTT route
        assert prices(sandbox)["source"] == "kite"
