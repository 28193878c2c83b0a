"""Issue 25, item 7: with LOG_LEVEL=DEBUG, urllib3 logged each request line and Apprise each URL
it posted to; Discord, Slack and Telegram (and a JSON webhook) carry their secret in the URL's
path. No secret URL may reach the log, at any level."""
from __future__ import annotations

import secrets

import requests

from tests.fakes.notify_receiver import NotifyReceiver

HOOK_TOKEN = "hooktoken" + secrets.token_hex(12)
DISCORD = ("123456789012345678", "Dsc" + secrets.token_urlsafe(40))
SLACK = ("T1JJ3T3L2", "B1BRTD4JD", "Slk" + secrets.token_hex(10))
TELEGRAM = ("123456789:AAH" + secrets.token_urlsafe(24), "987654321")


def test_at_debug_no_notification_secret_reaches_the_log(server_factory):
    with NotifyReceiver() as receiver:
        urls = [f"json://127.0.0.1:{receiver.port}/hook/{HOOK_TOKEN}", "discord://{}/{}".format(*DISCORD),
                "slack://{}/{}/{}".format(*SLACK), "tgram://{}/{}".format(*TELEGRAM)]
        server = server_factory(OCO_POLL_SECONDS="600", NOTIFY_URLS=" ".join(urls), NOTIFY_TIMEOUT="3",
                                LOG_LEVEL="DEBUG")
        key = server.cli("apikey", "create", "e2e").stdout.strip().splitlines()[-1]
        server.start()

        def post(path, **body):
            answer = requests.post(f"{server.url}/api/v1/{path}", json={"apikey": key, **body}, timeout=10)
            assert answer.status_code == 200, answer.text
            return answer.json()

        post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.50}])
        post("placegtt", trigger_type="SINGLE", exchange="NSE", symbol="IDEA", action="BUY", product="CNC",
             quantity=10, triggerprice_tg=9.61)
        post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.62}])
        receiver.wait_for(1)  # the JSON webhook got it: every URL was tried
        server.stop()
    log = server.output()
    assert "DEBUG urllib3" in log  # the request lines are logged, with their secrets masked
    for secret in (HOOK_TOKEN, DISCORD[1], SLACK[2], TELEGRAM[0].split(":")[1], TELEGRAM[0]):
        assert secret not in log, next(line for line in log.splitlines() if secret in line)
