"""A staged bracket's exit on Kite is placed exactly once: across two processes passing at the
same moment, and when the exit's answer is lost (settled by lookup, not placed again)."""
from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest

from openalgo_gtt.services.staged_bracket import StagedBrackets
from openalgo_gtt.store.staged_exits import StagedExits
from tests.fakes.fake_kite import FakeKite


@pytest.fixture
def fake():
    with FakeKite() as kite:
        kite.set_price("NSE:INFY", 1550, open=1540)
        yield kite


@pytest.fixture
def kite(settings, fake):
    from openalgo_gtt.app import create_app
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.instruments import load_master
    from openalgo_gtt.store.migrate import upgrade

    kite_settings = dataclasses.replace(settings, broker="kite", kite_api_url=fake.url, kite_api_key=fake.api_key,
                                        kite_access_token=fake.access_token, kite_timeout=1.0)
    upgrade(kite_settings.database_url)
    gateway = Gateway.build(kite_settings)
    load_master(gateway.engine, f"{fake.url}/instruments", broker="kite")
    app = create_app(gateway=gateway)
    app.config["TESTING"] = True
    yield gateway, app.test_client(), gateway.api_keys.create("tester")
    gateway.close()


def place_and_fill(client, key, fake) -> str:
    answer = client.post("/api/v1/placegtt", json={
        "apikey": key, "symbol": "INFY", "exchange": "NSE", "action": "SELL", "quantity": 1, "product": "CNC",
        "trigger_type": "BRACKET", "entry_mode": "manual", "entry_value": 1500}).get_json()
    assert answer["status"] == "success", answer
    fake.set_price("NSE:INFY", 1499)
    fake.fire(answer["trigger_id"])
    return answer["trigger_id"]


def second_process(gateway) -> StagedBrackets:
    """Another worker: its own broker client and holder id, the same database."""
    from openalgo_gtt.gateway import build_broker

    broker = build_broker(gateway.settings, gateway.sessions)
    return StagedBrackets(broker, StagedExits(gateway.sessions), gateway.attempts.finder.find_any, "other:1:x",
                          timedelta(seconds=30))


def test_two_processes_passing_together_place_one_exit(kite, fake):
    gateway, client, key = kite
    trigger_id = place_and_fill(client, key, fake)
    mine, theirs = StagedBrackets(gateway.broker, StagedExits(gateway.sessions), gateway.attempts.finder.find_any,
                                  gateway.holder_id, timedelta(seconds=30)), second_process(gateway)
    start = threading.Barrier(2)
    placed = []

    def run(staged):
        start.wait()
        placed.append(staged.advance())

    threads = [threading.Thread(target=run, args=(s,)) for s in (mine, theirs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    exits = [g for g in fake.gtts() if g["type"] == "two-leg"]
    assert sorted(placed) == [0, 1] and len(exits) == 1
    # A short's exit: BUY, the target below and the stop-loss above
    (exit_gtt,) = exits
    assert [o["transaction_type"] for o in exit_gtt["orders"]] == ["BUY", "BUY"]
    assert exit_gtt["condition"]["trigger_values"][0] < 1499 < exit_gtt["condition"]["trigger_values"][1]
    assert mine.advance() == 0 and theirs.advance() == 0  # settled: nothing more
    assert StagedExits(gateway.sessions).get(trigger_id).exit_gtt_id == str(exit_gtt["id"])


def test_a_lost_exit_answer_is_found_not_placed_twice(kite, fake):
    gateway, client, key = kite
    trigger_id = place_and_fill(client, key, fake)
    fake.inject("POST /gtt/triggers", "drop", after_work=True)
    staged = StagedBrackets(gateway.broker, StagedExits(gateway.sessions), gateway.attempts.finder.find_any,
                            gateway.holder_id, timedelta(seconds=30))
    assert staged.advance() == 1
    (exit_gtt,) = [g for g in fake.gtts() if g["type"] == "two-leg"]
    record = StagedExits(gateway.sessions).get(trigger_id)
    assert record.state == "placed" and record.exit_gtt_id == str(exit_gtt["id"])
    assert "found at the broker" in record.message
    assert staged.advance() == 0 and len([g for g in fake.gtts() if g["type"] == "two-leg"]) == 1


def test_a_claim_left_by_a_dead_process_is_settled_after_the_stale_window(kite, fake):
    gateway, client, key = kite
    trigger_id = place_and_fill(client, key, fake)
    exits = StagedExits(gateway.sessions)
    from openalgo_gtt.domain.clock import utcnow

    # A process claimed the exit and died before calling Kite.
    assert exits.claim(trigger_id, entry_gtt_id=trigger_id, entry_order_id="1", holder="dead:1:x",
                       now=utcnow() - timedelta(minutes=5))
    staged = StagedBrackets(gateway.broker, exits, gateway.attempts.finder.find_any, gateway.holder_id,
                            timedelta(seconds=30))
    assert staged.advance() == 0  # looked: not there, so the claim is released ...
    assert staged.advance() == 1  # ... and the next pass places it, once
    assert len([g for g in fake.gtts() if g["type"] == "two-leg"]) == 1
