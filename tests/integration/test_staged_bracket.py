"""A staged bracket's exit on Kite is placed exactly once: across two processes passing at the
same moment, and when the exit's answer is lost (settled by lookup, not placed again)."""
from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest

from openalgo_gtt.services.staged_bracket import StagedBrackets
from tests.clock import OffsetClock


@pytest.fixture
def fake(fake_kite):
    return fake_kite  # tests/integration/conftest.py: INFY quoted


@pytest.fixture
def kite(settings, fake):
    from openalgo_gtt.app import create_app
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.instruments import load_master
    from openalgo_gtt.store.migrate import upgrade

    kite_settings = dataclasses.replace(settings, broker="kite", kite_api_url=fake.url, kite_api_key=fake.api_key,
                                        kite_access_token=fake.access_token, kite_timeout=5.0)
    upgrade(kite_settings.database_url)
    gateway = Gateway.build(kite_settings, clock=OffsetClock())
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
    """Another worker: its own broker client, store and holder id, the same database."""
    from openalgo_gtt.gateway import build_broker
    from openalgo_gtt.services.attempts import AttemptDriver
    from openalgo_gtt.services.finder import BrokerFinder
    from openalgo_gtt.store.unit_of_work import Store

    broker = build_broker(gateway.settings, gateway.sessions)
    store = Store(gateway.engine, gateway.sessions, "other:1:x", gateway.clock)
    driver = AttemptDriver(store, BrokerFinder(broker, store, timedelta(seconds=30)), gateway.trade_limit, gateway.notifications,
                           settle_window=gateway.attempts.settle_window, stale_after=timedelta(seconds=30))
    return StagedBrackets(broker, store.exits, driver)


def this_process(gateway) -> StagedBrackets:
    return StagedBrackets(gateway.broker, gateway.store.exits, gateway.attempts)


def test_two_processes_passing_together_place_one_exit(kite, fake):
    gateway, client, key = kite
    trigger_id = place_and_fill(client, key, fake)
    mine, theirs = this_process(gateway), second_process(gateway)
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
    assert gateway.store.exits.get(trigger_id).exit_gtt_id == str(exit_gtt["id"])


def test_a_lost_exit_answer_is_found_not_placed_twice(kite, fake):
    gateway, client, key = kite
    trigger_id = place_and_fill(client, key, fake)
    fake.inject("POST /gtt/triggers", "drop", after_work=True)
    staged = this_process(gateway)
    assert staged.advance() == 1
    (exit_gtt,) = [g for g in fake.gtts() if g["type"] == "two-leg"]
    record = gateway.store.exits.get(trigger_id)
    assert record.state == "placed" and record.exit_gtt_id == str(exit_gtt["id"])
    assert "found at the broker" in record.message
    assert staged.advance() == 0 and len([g for g in fake.gtts() if g["type"] == "two-leg"]) == 1


def test_an_exit_whose_process_died_mid_call_is_settled_then_placed_once(kite, fake):
    """A process began the exit's attempt and died before calling Kite: the watcher's pass settles
    the attempt (nothing at Kite: it lapses once the window has passed), and the next pass places
    the exit, once."""
    from openalgo_gtt.services.staged_bracket import EXIT_ENDPOINT, EXIT_KEY_TTL, EXIT_OWNER, exit_plan, exit_request
    from openalgo_gtt.services.watcher import OneListing

    gateway, client, key = kite
    trigger_id = place_and_fill(client, key, fake)
    bracket = gateway.orders.get(trigger_id)
    dead = second_process(gateway)
    dead.driver.store.requests.holder = "elsewhere:1:dead"  # another host: only time tells it stopped
    with dead.driver.store.unit_of_work() as uow:
        record_id = uow.claim_request(EXIT_OWNER, f"exit:{trigger_id}", EXIT_ENDPOINT, f"exit:{trigger_id}",
                                      EXIT_KEY_TTL)
        uow.begin_attempt(record_id, exit_plan(bracket, exit_request(bracket, "CNC"), trigger_id, "1"), None,
                          gateway.clock.now())
    staged = this_process(gateway)
    assert staged.advance() == 0  # its attempt is open: left to the watcher's pass
    gateway.clock.advance(60)  # past the stale time and the settling window
    assert gateway.attempts.settle_all(OneListing(gateway.broker))  # nothing at Kite: it lapses
    assert staged.advance() == 1  # the next pass places the exit ...
    assert staged.advance() == 0  # ... once
    assert len([g for g in fake.gtts() if g["type"] == "two-leg"]) == 1
