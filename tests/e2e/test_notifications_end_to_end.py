"""Notifications from a real `python run.py` on the sandbox: a tick fires a GTT and the
receiver (Apprise's json:// URL, a real HTTP server in the test) hears of it; a restart delivers
what the receiver refused before it; the URL's secrets appear in no log and no health answer."""
from __future__ import annotations

import requests

from tests.fakes.notify_receiver import NotifyReceiver
from tests.waiting import until

SECRET = "pw-e2e-secret"


def notifications(server) -> dict:
    return requests.get(f"{server.url}/api/health", timeout=5).json()["notifications"]


def test_a_tick_that_fires_reaches_the_phone_and_a_restart_loses_nothing(server_factory):
    with NotifyReceiver(user="trader", password=SECRET) as receiver:
        env = {"OCO_POLL_SECONDS": "600", "NOTIFY_URLS": receiver.apprise_url, "LOG_LEVEL": "DEBUG"}
        server = server_factory(**env)
        key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
        server.start()

        def post(path, **body):
            answer = requests.post(f"{server.url}/api/v1/{path}", json={"apikey": key, **body}, timeout=10)
            assert answer.status_code == 200, answer.text
            return answer.json()

        post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.50}])
        order = {"trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC",
                 "quantity": 10, "triggerprice_tg": 9.61}
        first = post("placegtt", **order)["trigger_id"]
        post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.62}])
        # Waits end on what they wait for, never on a budget guessed for an idle machine (this one
        # once missed 10 s under load: the first delivery imported Apprise then; it does at start now).
        (message,) = receiver.wait_for(1)
        assert message["title"] == "GTT triggered" and first in message["message"]

        # The receiver refuses the next one; the server stops before its retry is due.
        receiver.fail_next(1, status=503)
        second = post("placegtt", **{**order, "triggerprice_tg": 9.70})
        post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.71}])
        assert receiver.wait_attempts(2) == 2 and len(receiver.messages) == 1  # the refused attempt
        until(lambda: notifications(server)["last_error"] is not None, "the server to record the refusal")
        health = notifications(server)
        server.stop()
        restarted = server_factory(**env).start()  # the same database and pepper
        # Sent by the next lease holder: at once if the stopped server released the lease, else
        # once it lapses (15 s after its last renewal), when its retry is due (5 s after the refusal).
        messages = receiver.wait_for(2)
        assert len(messages) == 2 and second["trigger_id"] in messages[1]["message"]
        logs = server.output() + restarted.output()
        assert SECRET not in logs and "trader:" not in logs
        assert SECRET not in str(health)
        assert health["urls"] == [f"1: json://127.0.0.1:{receiver.port}"]
