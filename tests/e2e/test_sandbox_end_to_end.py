"""The whole product on a fresh machine with no Upstox token: the sandbox broker, driven over
real HTTP, with triggers that fire."""
from __future__ import annotations

import pytest
import requests


class Sandbox:
    def __init__(self, server, key):
        self.server, self.key = server, key

    def post(self, path, **body):
        return requests.post(f"{self.server.url}/api/v1/{path}", json={"apikey": self.key, **body}, timeout=10)

    def tick(self, symbol, ltp, exchange="NSE", **extra):
        answer = self.post("sandbox/ticks", ticks=[{"symbol": symbol, "exchange": exchange, "ltp": ltp, **extra}])
        assert answer.status_code == 200, answer.text
        return answer.json()["fired"]

    def place(self, **order):
        answer = self.post("placegtt", **{"exchange": "NSE", "product": "CNC", "quantity": 1, **order})
        assert answer.status_code == 200, answer.text
        return answer.json()["trigger_id"]

    def legs(self, trigger_id):
        data = self.post("gttorderstatus", trigger_id=trigger_id).json()["data"]
        return {leg["role"]: (leg["status"], leg["price"]) for leg in data["legs"]}

    def status(self, trigger_id):
        return self.post("gttorderstatus", trigger_id=trigger_id).json()["data"]["status"]


def start(server_factory, **env):
    server = server_factory(OCO_POLL_SECONDS="600", **env)  # settling happens with each tick here
    key = server.cli("apikey", "create", "sandbox").stdout.strip().splitlines()[-1]
    return Sandbox(server.start(), key)


@pytest.fixture
def sandbox(server_factory):
    return start(server_factory)


def test_a_fresh_machine_runs_on_the_sandbox(sandbox):
    health = requests.get(f"{sandbox.server.url}/api/health", timeout=5).json()
    assert health["broker"] == "sandbox"
    refused = sandbox.post("placegtt", exchange="NSE", symbol="IDEA", action="BUY", quantity=1, triggerprice_tg=9.6)
    assert refused.status_code == 409
    message = refused.json()["message"]
    assert "push a tick" in message
    assert "no price for IDEA on NSE" in message and "INE669E01016" not in message  # the caller's names


def test_a_single_fires_when_the_price_crosses_and_not_before(sandbox):
    sandbox.tick("IDEA", 9.50)
    trigger_id = sandbox.place(symbol="IDEA", action="BUY", trigger_type="SINGLE", triggerprice_tg=9.55)
    assert sandbox.tick("IDEA", 9.54) == []
    assert sandbox.legs(trigger_id) == {"entry": ("SCHEDULED", 9.55)}
    (fill,) = sandbox.tick("IDEA", 9.56)
    assert (fill["gtt_id"], fill["transaction_type"], fill["price"], fill["symbol"]) == (trigger_id, "BUY", 9.55, "IDEA")
    assert sandbox.legs(trigger_id) == {"entry": ("COMPLETED", 9.55)}
    assert sandbox.tick("IDEA", 9.40) == [] and sandbox.tick("IDEA", 9.60) == []  # fires once


def test_an_oco_fires_one_leg_and_the_other_never_fires(sandbox):
    sandbox.tick("INFY", 1550)
    trigger_id = sandbox.place(symbol="INFY", action="SELL", trigger_type="OCO", quantity=5,
                               triggerprice_sl=1480, triggerprice_tg=1620, stoploss=1478, target=1622)
    (fill,) = sandbox.tick("INFY", 1475)
    assert fill["price"] == 1480 and fill["transaction_type"] == "SELL"
    assert sandbox.legs(trigger_id) == {"stoploss": ("COMPLETED", 1480), "target": ("CANCELLED", 1620)}
    assert sandbox.tick("INFY", 1630) == []  # the target leg never fires
    assert sandbox.status(trigger_id) == "triggered"


def test_a_bracket_enters_then_exits_at_target_with_the_stop_cancelled(sandbox):
    sandbox.tick("IDEA", 9.50, open=9.50)
    trigger_id = sandbox.place(symbol="IDEA", action="BUY", trigger_type="BRACKET", quantity=10,
                               entry_mode="manual", entry_value=10.00, target_type="manual", target_value=10.50,
                               sl_type="manual", sl_value=9.80)
    (entry,) = sandbox.tick("IDEA", 10.01)
    assert (entry["strategy"], entry["price"]) == ("ENTRY", 10.00)
    assert sandbox.legs(trigger_id) == {"entry": ("COMPLETED", 10.00), "target": ("SCHEDULED", 10.50),
                                        "stoploss": ("SCHEDULED", 9.80)}
    (exit_,) = sandbox.tick("IDEA", 10.55)
    assert (exit_["strategy"], exit_["transaction_type"], exit_["price"]) == ("TARGET", "SELL", 10.50)
    assert sandbox.legs(trigger_id)["stoploss"] == ("CANCELLED", 9.80)
    assert sandbox.tick("IDEA", 9.00) == []


def test_a_trailing_stop_follows_the_price_up_and_fires_on_the_way_down(sandbox):
    sandbox.tick("IDEA", 9.50)
    trigger_id = sandbox.place(symbol="IDEA", action="BUY", trigger_type="BRACKET", quantity=10,
                               entry_mode="manual", entry_value=10.00, target_type="manual", target_value=12.00,
                               sl_type="manual", sl_value=9.80, trailing_gap=0.20)
    sandbox.tick("IDEA", 10.00)  # entry fills
    sandbox.tick("IDEA", 10.50)
    assert sandbox.legs(trigger_id)["stoploss"] == ("SCHEDULED", 10.30)
    sandbox.tick("IDEA", 11.00)
    assert sandbox.tick("IDEA", 10.90) == []  # 10.80 not reached
    (stop,) = sandbox.tick("IDEA", 10.75)
    assert (stop["strategy"], stop["price"]) == ("STOPLOSS", 10.80)
    assert sandbox.legs(trigger_id)["target"][0] == "CANCELLED"


SCRIPT = [("IDEA", "9.50"), ("INFY", "1550"), ("IDEA", "9.54"), ("IDEA", "10.01"), ("INFY", "1475"),
          ("IDEA", "10.60"), ("INFY", "1630"), ("IDEA", "9.00")]


def place_script_gtts(sandbox):
    sandbox.tick("IDEA", 9.40)
    sandbox.tick("INFY", 1500)
    return [
        sandbox.place(symbol="IDEA", action="BUY", trigger_type="SINGLE", triggerprice_tg=9.55),
        sandbox.place(symbol="INFY", action="SELL", trigger_type="OCO", quantity=5,
                      triggerprice_sl=1480, triggerprice_tg=1620, stoploss=1480, target=1620),
        sandbox.place(symbol="IDEA", action="BUY", trigger_type="BRACKET", quantity=10, entry_mode="manual",
                      entry_value=10.00, target_type="manual", target_value=10.50, sl_type="manual", sl_value=9.80),
    ]


def outcomes(sandbox, trigger_ids):
    return [sorted(sandbox.legs(t).items()) for t in trigger_ids]


def test_a_replayed_csv_produces_the_same_outcomes_as_ticks_pushed_by_hand(server_factory, tmp_path):
    by_hand = start(server_factory)
    ids = place_script_gtts(by_hand)
    for symbol, ltp in SCRIPT:
        by_hand.tick(symbol, float(ltp))
    expected = outcomes(by_hand, ids)
    by_hand.server.stop()

    replayed = start(server_factory, DATABASE_URL=f"sqlite:///{tmp_path / 'replay.db'}")
    ids = place_script_gtts(replayed)
    csv_file = tmp_path / "ticks.csv"
    csv_file.write_text("timestamp,symbol,exchange,ltp\n" + "".join(
        f"2026-11-23T09:{15 + n:02d}:00,{symbol},NSE,{ltp}\n" for n, (symbol, ltp) in enumerate(SCRIPT)))
    result = replayed.server.cli("sandbox", "replay", str(csv_file), "--speed", "0")
    assert f"replayed {len(SCRIPT)} ticks" in result.stdout
    assert outcomes(replayed, ids) == expected
    assert expected[1] == [("stoploss", ("COMPLETED", 1480)), ("target", ("CANCELLED", 1620))]


def test_state_survives_a_restart(sandbox):
    sandbox.tick("IDEA", 9.50)
    trigger_id = sandbox.place(symbol="IDEA", action="BUY", trigger_type="BRACKET", quantity=10,
                               entry_mode="manual", entry_value=10.00, target_type="manual", target_value=12.00,
                               sl_type="manual", sl_value=9.80, trailing_gap=0.20)
    sandbox.tick("IDEA", 10.00)
    sandbox.tick("IDEA", 10.60)  # the stop trails to 10.40
    sandbox.server.stop(kill=True)
    sandbox.server.start()
    assert sandbox.legs(trigger_id) == {"entry": ("COMPLETED", 10.00), "target": ("SCHEDULED", 12.00),
                                        "stoploss": ("SCHEDULED", 10.40)}
    (stop,) = sandbox.tick("IDEA", 10.35)
    assert stop["price"] == 10.40
