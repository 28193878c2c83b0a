"""Notifications end to end: a gateway with its watcher and sender running, the fake Upstox (or
the sandbox), and Apprise's json:// URL posting to a real HTTP receiver in the test."""
from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest
from sqlalchemy import func, select

from openalgo_gtt.services import notifications as notifications_module
from openalgo_gtt.store.models import NotifyDelivery
from tests.fakes.notify_receiver import NotifyReceiver
from tests.waiting import until

SINGLE_BUY = {
    "strategy": "Python", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
    "product": "CNC", "quantity": 10, "pricetype": "LIMIT", "price": 0.0, "triggerprice_tg": 9.61,
}


@pytest.fixture
def receiver():
    with NotifyReceiver() as running:
        yield running


@pytest.fixture
def fast_retries(monkeypatch):
    """The issue's backoff (5 s, doubling to 5 min) in tenths of a second, so a test waits 0.3 s."""
    monkeypatch.setattr(notifications_module, "FIRST_RETRY", notifications_module.FIRST_RETRY / 50)
    monkeypatch.setattr(notifications_module, "MAX_BACKOFF", notifications_module.MAX_BACKOFF / 50)


def build_gateway(settings, fake_upstox, urls, **extra):
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.instruments import ensure_instruments
    from openalgo_gtt.store.migrate import upgrade

    upstox = fake_upstox is not None
    values = {"notify_urls": tuple(urls), "notify_timeout": 2.0, "oco_poll_seconds": 0.2}
    if upstox:
        values.update(broker="upstox", upstox_api_url=fake_upstox.url, access_token=fake_upstox.token,
                      upstox_timeout=5.0)
    configured = dataclasses.replace(settings, **{**values, **extra})
    upgrade(configured.database_url)
    gateway = Gateway.build(configured)
    ensure_instruments(gateway.engine)
    return gateway


@pytest.fixture
def running(settings, fake_upstox, receiver):
    """A gateway on the fake Upstox notifying the receiver, its watcher and sender started."""
    gateway = build_gateway(settings, fake_upstox, [receiver.apprise_url])
    gateway.start_watching()
    yield gateway
    gateway.close()


def client_for(gateway):
    from openalgo_gtt.app import create_app

    app = create_app(gateway=gateway)
    app.config["TESTING"] = True
    key = gateway.api_keys.create("tester")
    test_client = app.test_client()

    def post(path, body=None, **fields):
        return test_client.post(f"/api/v1/{path}", data=json.dumps({"apikey": key, **(body or {}), **fields}),
                                content_type="application/json")

    post.client = test_client
    return post


def place(post, body=SINGLE_BUY):
    answer = post("placegtt", body)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["trigger_id"]


def test_a_triggered_rule_reaches_the_receiver_within_seconds(running, fake_upstox, receiver):
    post = client_for(running)
    trigger_id = place(post)
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000123")
    (message,) = receiver.wait_for(1)
    assert message["title"] == "GTT triggered"
    assert message["type"] == "success"
    first_line = message["message"].splitlines()[0]
    assert first_line == f"BUY 10 IDEA (NSE) above 9.61 — {trigger_id}, order 251202000123"
    assert message["message"].splitlines()[-1].endswith(" IST")
    # The order status lists the event, delivered to the one URL. The sender writes the delivery
    # down just after the receiver answered: wait for that, then check it.
    def order_status() -> dict:
        return post("gttorderstatus", trigger_id=trigger_id).get_json()["data"]

    until(lambda: [e["deliveries"] for e in order_status()["events"]] != [["pending"]], "the delivery written down")
    status = order_status()
    assert status["status"] == "triggered"
    assert [(e["event"], e["deliveries"]) for e in status["events"]] == [("triggered", ["delivered"])]
    assert status["events"][0]["message"].startswith("GTT triggered: BUY 10 IDEA (NSE) above 9.61")
    time.sleep(0.6)  # a few more polls: nothing new to tell
    assert len(receiver.messages) == 1


def test_a_failed_rule_carries_the_brokers_message(running, fake_upstox, receiver):
    post = client_for(running)
    trigger_id = place(post)
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "FAILED", message="Insufficient funds")
    (message,) = receiver.wait_for(1)
    assert message["title"] == "GTT rejected" and message["type"] == "failure"
    assert "Insufficient funds" in message["message"]
    assert trigger_id in message["message"]


def test_a_receiver_answering_503_twice_gets_the_message_exactly_once(fast_retries, running, fake_upstox, receiver):
    receiver.fail_next(2, status=503)
    post = client_for(running)
    trigger_id = place(post)
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000124")
    receiver.wait_for(1)
    time.sleep(1.0)  # room for a wrong extra attempt
    assert receiver.attempts == 3
    assert len(receiver.messages) == 1
    with running.engine.connect() as conn:
        (state, attempts), = conn.execute(select(NotifyDelivery.state, NotifyDelivery.attempts)).all()
    assert (state, attempts) == ("delivered", 3)


def test_a_restart_delivers_what_was_not_delivered(settings, fake_upstox, receiver):
    # First life: the change is recorded (and its event with it), but the process dies before
    # its sender runs.
    first = build_gateway(settings, fake_upstox, [receiver.apprise_url])
    post = client_for(first)
    trigger_id = place(post)
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000125")
    assert first.watcher.sync().statuses_changed == [trigger_id]
    first.close()
    assert receiver.messages == []
    # Second life, same database: the pending delivery goes out.
    second = build_gateway(settings, fake_upstox, [receiver.apprise_url])
    try:
        second.start_watching()
        (message,) = receiver.wait_for(1)
        assert trigger_id in message["message"]
    finally:
        second.close()


def test_a_receiver_that_is_down_delays_only_its_own_messages(settings, fake_upstox, receiver):
    with NotifyReceiver(user="alice", password="s3cr3t-pass") as down:
        down.fail_next(1000, status=503)
        gateway = build_gateway(settings, fake_upstox, [down.apprise_url, receiver.apprise_url])
        try:
            gateway.start_watching()
            post = client_for(gateway)
            trigger_id = place(post)
            fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000126")
            (message,) = receiver.wait_for(1)
            assert trigger_id in message["message"]
            # A receiver sees a message before the sender has written down how the delivery went:
            # wait until both outcomes are written (the good one delivered, the down one failed once).
            def notifications() -> dict:
                return post.client.get("/api/health").get_json()["notifications"]

            until(lambda: down.attempts and notifications()["last_error"] and notifications()["pending"] == 1,
                  "both deliveries written down")
            health = notifications()
            assert health["pending"] == 1 and health["failed"] == 0
            assert health["urls"] == [f"1: json://127.0.0.1:{down.port}", f"2: json://127.0.0.1:{receiver.port}"]
            text = json.dumps(health)
            assert "s3cr3t-pass" not in text and "alice" not in text
            assert health["last_error"]
        finally:
            gateway.close()


def test_a_hung_receiver_never_slows_a_place(settings, fake_upstox, receiver):
    receiver.hang = True
    gateway = build_gateway(settings, fake_upstox, [receiver.apprise_url], notify_timeout=30.0)
    try:
        gateway.start_watching()
        post = client_for(gateway)
        trigger_id = place(post)
        fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000127")
        assert receiver.wait_in_flight()  # the sender is stuck in a delivery now
        for _ in range(3):  # places (and the book) answer while it stays stuck
            place(post, {**SINGLE_BUY, "triggerprice_tg": 9.70})
            assert post("gttorderbook").status_code == 200
        assert receiver.in_flight == 1 and receiver.messages == []
    finally:
        receiver.release()
        gateway.close()


def test_the_same_events_come_from_sandbox_ticks(settings, receiver):
    gateway = build_gateway(settings, None, [receiver.apprise_url])
    try:
        gateway.start_watching()
        post = client_for(gateway)
        assert post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.50}]).status_code == 200
        trigger_id = place(post)
        assert post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.62}]).status_code == 200
        (message,) = receiver.wait_for(1)
        assert message["title"] == "GTT triggered"
        assert message["message"].startswith(f"BUY 10 IDEA (NSE) above 9.61 — {trigger_id}, order ")
    finally:
        gateway.close()


def test_an_event_not_selected_is_kept_but_not_sent(settings, fake_upstox, receiver):
    gateway = build_gateway(settings, fake_upstox, [receiver.apprise_url], notify_events=("rejected",))
    try:
        post = client_for(gateway)
        trigger_id = place(post)
        fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000128")
        gateway.watcher.sync()
        with gateway.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(NotifyDelivery)) == 0
        events = post("gttorderstatus", trigger_id=trigger_id).get_json()["data"]["events"]
        assert [(e["event"], e["deliveries"]) for e in events] == [("triggered", [])]
    finally:
        gateway.close()


def test_two_observers_of_one_change_notify_once(settings, fake_upstox, receiver):
    gateway = build_gateway(settings, fake_upstox, [receiver.apprise_url])
    try:
        post = client_for(gateway)
        trigger_id = place(post)
        fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000129")
        barrier = threading.Barrier(2)

        def observe():
            barrier.wait()
            gateway.watcher.settle_broker_gtt(trigger_id)

        threads = [threading.Thread(target=observe) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        gateway.watcher.sync()
        events = post("gttorderstatus", trigger_id=trigger_id).get_json()["data"]["events"]
        assert [e["event"] for e in events] == ["triggered"]
    finally:
        gateway.close()


def test_notify_test_sends_to_every_url_and_reports_each_masked(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from openalgo_gtt.cli import cli

    monkeypatch.chdir(tmp_path)
    with NotifyReceiver(user="carol", password="hunter2-secret") as up, NotifyReceiver() as down:
        down.fail_next(10, status=503)
        env = {"API_KEY_PEPPER": "p" * 40, "BROKER": "sandbox", "NOTIFY_TIMEOUT": "2",
               "NOTIFY_URLS": f"{up.apprise_url}, {down.apprise_url}"}
        result = CliRunner().invoke(cli, ["notify", "test"], env=env, catch_exceptions=False)
        assert result.exit_code == 1  # one URL failed
        lines = result.output.splitlines()
        assert lines[0] == f"1: json://127.0.0.1:{up.port}  delivered"
        assert lines[1].startswith(f"2: json://127.0.0.1:{down.port}  NOT delivered: ")
        assert "hunter2-secret" not in result.output and "carol" not in result.output
        (message,) = up.messages
        assert message["title"] == "openalgo-gtt test"


def test_an_oco_leg_firing_tells_the_fire_and_the_settlement(running, fake_upstox, receiver):
    post = client_for(running)
    oco = {"strategy": "Python", "trigger_type": "OCO", "exchange": "NSE", "symbol": "INFY", "action": "SELL",
           "product": "CNC", "quantity": 5, "pricetype": "LIMIT", "price": 0.0, "triggerprice_sl": 1480.0,
           "triggerprice_tg": 1620.0}
    trigger_id = place(post, oco)
    lower, upper = running.orders.get(trigger_id).broker_ids
    fake_upstox.set_rule_status(upper, "ENTRY", "TRIGGERED", order_id="251202000400")
    first, second = receiver.wait_for(2)
    assert first["title"] == "GTT triggered"
    assert first["message"].startswith(f"SELL 5 INFY (NSE) above 1620.00 — {trigger_id} (target leg {upper}), "
                                       "order 251202000400")
    assert second["title"] == "OCO settled"
    assert f"the stop-loss leg {lower} was cancelled" in second["message"]
    assert fake_upstox.gtt(lower)["rules"][0]["status"] == "CANCELLED"
