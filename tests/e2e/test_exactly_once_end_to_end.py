"""Exactly once, the reproductions of the fault soak, each through the real server in its own
process against the fake Upstox: a broker that finishes late (the "late" fault: it holds the
request, then creates the GTT after the gateway has stopped waiting), a GTT made in the app just
before a failed place, an idempotency key reused for another request, and a duplicate of a place
the watcher settled."""
from __future__ import annotations

import time

import requests
from sqlalchemy import create_engine, select

from openalgo_gtt.store.models import AuditRecord, GttOrder
from tests.waiting import until

IDEA = "NSE_EQ|INE669E01016"
ORDER = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "SINGLE",
         "product": "CNC", "triggerprice_tg": 9.61}


def start(server_factory, fake, **env):
    fake.set_price(IDEA, "IDEA", "NSE_EQ", "9.50", open="10.00")
    server = server_factory(ACCESS_TOKEN=fake.token, UPSTOX_API_URL=fake.url, DAILY_TRADE_LIMIT="150", **env)
    key = server.cli("apikey", "create", "settling").stdout.strip().splitlines()[-1]
    return server.start(), key


def place(server, key, **fields):
    return requests.post(f"{server.url}/api/v1/placegtt", json={"apikey": key, **ORDER, **fields}, timeout=30)


def health(server):
    return requests.get(f"{server.url}/api/health", timeout=5).json()


def live(fake):
    return [g for g in fake.gtts() if any(r["status"] == "SCHEDULED" for r in g["rules"])]


def test_a_retry_while_upstox_is_still_working_is_not_placed_and_then_gets_the_gtt(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox, UPSTOX_TIMEOUT="2", OCO_POLL_SECONDS="600")
    fake_upstox.inject("gtt.place", "late", seconds=6)  # Upstox creates it 6 s after the request
    first = place(server, key)
    assert first.status_code == 504 and first.json()["outcome_unknown"] is True
    time.sleep(1)
    retry = place(server, key)  # TradingView re-sends after a 5xx
    assert retry.status_code == 503 and retry.json()["retry_after"] >= 1
    assert int(retry.headers["Retry-After"]) == retry.json()["retry_after"]
    until(lambda: fake_upstox.gtts(), "Upstox to finish the first place")
    again = place(server, key)  # within the window: the GTT is found, not placed again
    assert again.status_code == 200, again.json()
    (gtt,) = fake_upstox.gtts()
    assert again.json()["trigger_id"] == gtt["gtt_order_id"]
    assert len(fake_upstox.calls_to("gtt.place")) == 1 and health(server)["today_trade_count"] == 1


def test_a_very_late_gtt_is_cancelled_when_the_request_was_placed_afresh(server_factory, fake_upstox, database_url):
    server, key = start(server_factory, fake_upstox, UPSTOX_TIMEOUT="1", SETTLE_SECONDS="2",
                        OCO_POLL_SECONDS="0.3")
    fake_upstox.inject("gtt.place", "late", seconds=4)
    assert place(server, key).status_code == 504
    time.sleep(2.2)  # the window has passed with nothing at Upstox: the place lapses
    fresh = place(server, key)
    assert fresh.status_code == 200, fresh.json()
    until(lambda: len(fake_upstox.gtts()) == 2, "the late GTT to appear at Upstox")
    until(lambda: len(live(fake_upstox)) == 1, "the watcher to cancel the late duplicate")
    assert [g["gtt_order_id"] for g in live(fake_upstox)] == [fresh.json()["trigger_id"]]
    assert health(server)["today_trade_count"] == 1
    engine = create_engine(database_url)

    def late_rows() -> list[str]:
        with engine.connect() as conn:
            return conn.execute(select(AuditRecord.error).where(AuditRecord.endpoint == "(late GTT)")).scalars().all()

    until(late_rows, "the late GTT's audit row")  # written beside the cancel
    rows = late_rows()
    engine.dispose()
    assert len(rows) == 1 and "duplicate and was cancelled" in rows[0]


def test_a_very_late_gtt_without_a_retry_is_recorded_and_counted(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox, UPSTOX_TIMEOUT="1", SETTLE_SECONDS="2",
                        OCO_POLL_SECONDS="0.3")
    fake_upstox.inject("gtt.place", "late", seconds=4)
    assert place(server, key).status_code == 504
    until(lambda: health(server)["today_trade_count"] == 0, "the place to lapse and give its trade back")
    until(lambda: health(server)["today_trade_count"] == 1, "the late GTT to be counted")
    (gtt,) = fake_upstox.gtts()
    book = requests.post(f"{server.url}/api/v1/gttorderbook", json={"apikey": key}, timeout=10).json()
    assert [o["trigger_id"] for o in book["data"]] == [gtt["gtt_order_id"]]
    duplicate = place(server, key)  # the caller's late retry gets that GTT
    assert duplicate.status_code == 200 and duplicate.json()["trigger_id"] == gtt["gtt_order_id"]
    assert len(fake_upstox.calls_to("gtt.place")) == 1


def test_a_failed_place_never_claims_a_gtt_made_in_the_app(server_factory, fake_upstox, database_url):
    server, key = start(server_factory, fake_upstox, UPSTOX_TIMEOUT="1", SETTLE_SECONDS="2",
                        OCO_POLL_SECONDS="0.3")
    app_gtt = place_in_the_app(fake_upstox)
    time.sleep(1)
    fake_upstox.inject("gtt.place", "500")  # a plain 500, before any work
    assert place(server, key).status_code == 502
    until(lambda: health(server)["today_trade_count"] == 0, "the place to lapse")
    placed = place(server, key)
    assert placed.status_code == 200 and placed.json()["trigger_id"] != app_gtt
    engine = create_engine(database_url)

    def recorded() -> list[str]:  # the gateway's own GTTs
        with engine.connect() as conn:
            return conn.execute(select(GttOrder.trigger_id)).scalars().all()

    # The record is committed just after the answer: wait for it, then it must be the only one.
    until(lambda: placed.json()["trigger_id"] in recorded(), "the place to be recorded")
    assert recorded() == [placed.json()["trigger_id"]]  # not the app's
    engine.dispose()
    assert health(server)["today_trade_count"] == 1


def place_in_the_app(fake) -> str:
    """A GTT the trader makes in the Upstox app: the same order, straight at the fake."""
    answer = requests.post(f"{fake.url}/v3/order/gtt/place", headers={"Authorization": f"Bearer {fake.token}"},
                           json={"type": "SINGLE", "quantity": 1, "product": "D", "instrument_token": IDEA,
                                 "transaction_type": "BUY",
                                 "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": 9.61}]},
                           timeout=5).json()
    return answer["data"]["gtt_order_ids"][0]


def test_an_idempotency_key_belongs_to_one_request(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox, OCO_POLL_SECONDS="600")
    placed = place(server, key, idempotency_key="order-42")
    assert placed.status_code == 200
    trigger_id = placed.json()["trigger_id"]
    cancel = requests.post(f"{server.url}/api/v1/cancelgtt", timeout=10,
                           json={"apikey": key, "trigger_id": trigger_id, "idempotency_key": "order-42"})
    assert cancel.status_code == 422 and "was used for a different request" in cancel.json()["message"]
    assert live(fake_upstox) and not fake_upstox.calls_to("gtt.cancel")  # nothing was cancelled
    other = place(server, key, idempotency_key="order-42", triggerprice_tg=9.70)
    assert other.status_code == 422 and len(fake_upstox.calls_to("gtt.place")) == 1
    again = place(server, key, idempotency_key="order-42")
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["trigger_id"] == trigger_id


def test_a_duplicate_of_a_place_the_watcher_settled_answers_like_the_place(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox, UPSTOX_TIMEOUT="1", OCO_POLL_SECONDS="0.3")
    fake_upstox.inject("gtt.place", "hang", after_work=True, seconds=3)  # done, but the answer never came
    first = place(server, key)
    assert first.status_code == 504
    until(lambda: health(server)["today_trade_count"] == 1 and fake_upstox.gtts(), "the GTT to exist")
    time.sleep(1.0)  # a few watcher passes: the GTT is found and the request answered
    duplicate = place(server, key)
    body = duplicate.json()
    (gtt,) = fake_upstox.gtts()
    assert duplicate.status_code == 200 and body["duplicate"] is True
    assert body["original_request_id"] == first.headers["X-Request-ID"]
    assert body["trigger_id"] == gtt["gtt_order_id"] and body["entry"] == 9.61
    assert len(fake_upstox.calls_to("gtt.place")) == 1


def test_with_its_redis_down_the_gateway_still_places_once_and_paces_in_memory(server_factory, fake_upstox):
    # Nothing listens on port 1: the caller limits and the order pacer both fall back to memory.
    server, key = start(server_factory, fake_upstox, RATE_LIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    answers = [place(server, key, triggerprice_tg=f"{9.61 + n / 100:.2f}") for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert len(fake_upstox.calls_to("gtt.place")) == 3 and health(server)["today_trade_count"] == 3
    assert "order pacer: the shared schedule is unavailable" in server.output()


def test_a_cancel_upstox_did_whose_answer_was_lost_succeeds_when_retried(server_factory, fake_upstox):
    server, key = start(server_factory, fake_upstox)
    trigger_id = place(server, key).json()["trigger_id"]
    cancel = {"apikey": key, "trigger_id": trigger_id, "idempotency_key": "cancel-1"}
    fake_upstox.inject("gtt.cancel", "500", after_work=True)  # Upstox cancelled it, then answered 500
    first = requests.post(f"{server.url}/api/v1/cancelgtt", json=cancel, timeout=30)
    assert first.status_code == 502
    again = requests.post(f"{server.url}/api/v1/cancelgtt", json=cancel, timeout=30)  # the caller's retry
    assert again.status_code == 200
    assert again.json()["status"] == "success" and again.json()["trigger_id"] == trigger_id
    status = requests.post(f"{server.url}/api/v1/gttorderstatus", json={"apikey": key, "trigger_id": trigger_id},
                           timeout=30).json()
    assert status["data"]["status"] == "cancelled", status
    fired = place(server, key, triggerprice_tg=9.70).json()["trigger_id"]
    fake_upstox.set_rule_status(fired, "ENTRY", "TRIGGERED")  # a GTT that fired still cannot be cancelled
    refused = requests.post(f"{server.url}/api/v1/cancelgtt", json={"apikey": key, "trigger_id": fired}, timeout=30)
    assert refused.status_code == 400
