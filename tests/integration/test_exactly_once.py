"""Exactly-once placement: idempotency keys, duplicate alerts, lost answers, crashed processes."""
from __future__ import annotations

import dataclasses

import json
import socket
import threading

import pytest
from sqlalchemy import update

from openalgo_gtt.services.watcher import OneListing
from openalgo_gtt.store.models import PlaceAttemptRow, RequestRecord


def settle(gateway) -> list[str]:
    """One watcher pass over the place attempts."""
    return gateway.attempts.settle_all(OneListing(gateway.broker))

SINGLE = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "SINGLE",
          "triggerprice_tg": 9.55}


# What a timed-out place leaves behind: a short budget, which the fake's hangs (3 s) outlast.
SHORT_BUDGET = pytest.mark.parametrize("upstox_timeout", [1.0])


@pytest.fixture
def post(upstox_client, upstox_key):
    def send(path="placegtt", body=None, headers=None, **fields):
        return upstox_client.post(f"/api/v1/{path}", data=json.dumps({"apikey": upstox_key, **(body or SINGLE), **fields}),
                                  content_type="application/json", headers=headers or {})

    return send


def places(fake):
    return len(fake.calls_to("gtt.place"))


def test_an_idempotency_key_returns_the_first_answer_and_never_calls_again(post, fake_upstox, upstox_gateway):
    first = post(idempotency_key="alert-42").get_json()
    again = post(idempotency_key="alert-42")
    assert again.status_code == 200
    body = again.get_json()
    assert body["trigger_id"] == first["trigger_id"] and body["duplicate"] is True
    assert body["original_request_id"] == first["request_id"]
    header = post(headers={"Idempotency-Key": "alert-42"}).get_json()
    assert header["trigger_id"] == first["trigger_id"]
    assert places(fake_upstox) == 1 and upstox_gateway.trade_limit.today_count() == 1


def test_an_idempotency_key_reused_for_another_request_is_refused(post, upstox_client, upstox_key, fake_upstox):
    first = post(idempotency_key="order-42").get_json()
    changed = post(idempotency_key="order-42", triggerprice_tg=9.60)  # another body, the same key
    assert changed.status_code == 422
    assert "order-42" in changed.get_json()["message"] and "different request" in changed.get_json()["message"]
    cancel = upstox_client.post("/api/v1/cancelgtt", json={"apikey": upstox_key, "trigger_id": first["trigger_id"],
                                                           "idempotency_key": "order-42"})
    assert cancel.status_code == 422  # another operation, the same key: nothing is cancelled
    assert places(fake_upstox) == 1 and not fake_upstox.calls_to("gtt.cancel")


def test_two_different_keys_in_the_body_and_the_header_are_refused(post, upstox_client, upstox_key, fake_upstox):
    first = post(idempotency_key="order-42").get_json()
    for path, fields in (("placegtt", {}), ("cancelgtt", {"body": {"trigger_id": first["trigger_id"]}})):
        both = post(path, headers={"Idempotency-Key": "order-43"}, idempotency_key="order-42", **fields)
        assert both.status_code == 400 and "differ" in both.get_json()["message"]
    same = post(headers={"Idempotency-Key": "order-42"}, idempotency_key="order-42")  # one key, twice: fine
    assert same.status_code == 200 and same.get_json()["duplicate"] is True
    assert places(fake_upstox) == 1 and not fake_upstox.calls_to("gtt.cancel")


def test_two_requests_with_one_key_at_the_same_moment_place_once(upstox_gateway, upstox_client, upstox_key, fake_upstox):
    from openalgo_gtt.app import create_app

    fake_upstox.latency = 0.3  # the first is still at the broker when the second arrives
    app = create_app(gateway=upstox_gateway)
    answers, start = [], threading.Barrier(2)

    def send():
        client = app.test_client()
        start.wait()
        answers.append(client.post("/api/v1/placegtt", json={"apikey": upstox_key, **SINGLE, "idempotency_key": "same"}))

    threads = [threading.Thread(target=send) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(a.status_code for a in answers) == [200, 200]
    assert len({a.get_json()["trigger_id"] for a in answers}) == 1
    assert places(fake_upstox) == 1


def test_an_identical_alert_within_the_window_is_a_duplicate(post, fake_upstox, upstox_gateway):
    first = post().get_json()
    again = post().get_json()
    assert again["duplicate"] is True and again["trigger_id"] == first["trigger_id"]
    assert places(fake_upstox) == 1 and upstox_gateway.trade_limit.today_count() == 1
    other = post(triggerprice_tg=9.60).get_json()  # a different alert is not a duplicate
    assert "duplicate" not in other and places(fake_upstox) == 2


def test_dedupe_window_zero_turns_body_dedupe_off(fake_upstox, upstox_gateway):
    from openalgo_gtt.app import create_app
    from openalgo_gtt.gateway import Gateway

    gateway = Gateway.build(dataclasses.replace(upstox_gateway.settings, dedupe_window_seconds=0))
    try:
        client, key = create_app(gateway=gateway).test_client(), gateway.api_keys.create("no-dedupe")
        for _ in range(2):
            assert client.post("/api/v1/placegtt", json={"apikey": key, **SINGLE}).status_code == 200
        assert places(fake_upstox) == 2
    finally:
        gateway.close()


def test_a_refusal_is_replayed_but_a_broker_fault_is_retried(post, fake_upstox, upstox_gateway):
    fake_upstox.inject("gtt.place", "error", status=400, code="UDAPI1130", message="Trigger price out of range")
    assert post().status_code == 400
    replay = post()
    assert replay.status_code == 400 and replay.get_json()["duplicate"] is True
    assert places(fake_upstox) == 1

    fake_upstox.inject("gtt.place", "500")
    assert post(triggerprice_tg=9.70).status_code == 502  # Upstox may yet create it: settling
    settling = post(triggerprice_tg=9.70)  # TradingView re-sends after a 5xx
    assert settling.status_code == 503 and settling.get_json()["retry_after"] >= 1
    assert settling.headers["Retry-After"] == str(settling.get_json()["retry_after"])
    assert places(fake_upstox) == 2 and not fake_upstox.gtts()  # the retry placed nothing
    upstox_gateway.clock.advance(1.6)  # the settling window (1.5 s here) passes with nothing at Upstox
    retry = post(triggerprice_tg=9.70)
    assert retry.status_code == 200 and "duplicate" not in retry.get_json()
    assert len(fake_upstox.gtts()) == 1


def test_a_lost_answer_is_found_at_the_broker_before_answering(post, fake_upstox, upstox_gateway):
    fake_upstox.inject("gtt.place", "500", after_work=True)  # Upstox placed it, then answered 500
    answer = post()
    assert answer.status_code == 200, answer.get_json()
    (gtt,) = fake_upstox.gtts()
    assert answer.get_json()["trigger_id"] == gtt["gtt_order_id"]
    assert upstox_gateway.trade_limit.today_count() == 1


@SHORT_BUDGET
def test_a_timeout_after_the_work_is_reconciled_by_the_retry(post, fake_upstox, upstox_gateway):
    fake_upstox.inject("gtt.place", "hang", after_work=True, seconds=3)
    assert post().status_code == 504
    retry = post()
    assert retry.status_code == 200
    (gtt,) = fake_upstox.gtts()
    assert retry.get_json()["trigger_id"] == gtt["gtt_order_id"]
    assert upstox_gateway.trade_limit.today_count() == 1
    assert upstox_gateway.orders.get(gtt["gtt_order_id"]) is not None


@SHORT_BUDGET
def test_a_timeout_without_the_work_is_placed_by_the_retry(post, fake_upstox, upstox_gateway):
    fake_upstox.inject("gtt.place", "hang", seconds=3)
    assert post().status_code == 504
    assert upstox_gateway.trade_limit.today_count() == 1  # unknown yet: kept until settled
    assert post().status_code == 503  # within the settling window: not placed again
    upstox_gateway.clock.advance(upstox_gateway.settings.settle_seconds)
    assert post().status_code == 200  # nothing turned up: placed afresh
    assert len(fake_upstox.gtts()) == 1 and upstox_gateway.trade_limit.today_count() == 1


@SHORT_BUDGET
def test_a_crashed_processs_places_are_settled(post, fake_upstox, upstox_gateway):
    fake_upstox.inject("gtt.place", "hang", after_work=True, seconds=3)
    post()
    fake_upstox.inject("gtt.place", "hang", seconds=3)
    post(triggerprice_tg=9.80)
    # Both attempts now look like a process died mid-request: sending, by a pid that is gone; and
    # the settling window passes.
    dead = f"{socket.gethostname()}:999999:dead"
    with upstox_gateway.engine.begin() as conn:
        conn.execute(update(RequestRecord).values(state="pending", holder=dead))
        conn.execute(update(PlaceAttemptRow).values(state="sending", holder=dead))
    upstox_gateway.clock.advance(upstox_gateway.settings.settle_seconds + 1)
    assert upstox_gateway.trade_limit.today_count() == 2
    assert len(settle(upstox_gateway)) == 2
    (gtt,) = fake_upstox.gtts()
    assert upstox_gateway.orders.get(gtt["gtt_order_id"]) is not None  # the placed one is known
    assert upstox_gateway.trade_limit.today_count() == 1  # the other gave its trade back
    assert settle(upstox_gateway) == []


# ----- answered first, recorded just after ---------------------------------------------------------


def _audit_rows(gateway, request_id):
    from sqlalchemy import select

    from openalgo_gtt.store.models import AuditRecord

    with gateway.sessions() as session:
        return session.scalars(select(AuditRecord).where(AuditRecord.request_id == request_id)).all()


OCO_SELL = {"trigger_type": "OCO", "exchange": "NSE", "symbol": "INFY", "action": "SELL", "product": "CNC",
            "quantity": 5, "triggerprice_sl": 1480.0, "triggerprice_tg": 1620.0}


def test_the_gtt_and_its_audit_row_are_recorded_before_the_answer(upstox_client, upstox_key, upstox_gateway):
    response = upstox_client.post("/api/v1/placegtt", json={"apikey": upstox_key, **SINGLE}, buffered=False)
    answer = response.get_json()
    assert response.status_code == 200 and answer["status"] == "success"
    assert upstox_gateway.orders.get(answer["trigger_id"]) is not None  # before the response is even closed
    (row,) = _audit_rows(upstox_gateway, answer["request_id"])
    assert row.http_status == 200 and row.response_body["trigger_id"] == answer["trigger_id"]
    assert row.request_body["apikey"] == "***"
    response.close()


def test_a_cancel_sent_the_moment_the_place_answers_finds_its_record(upstox_client, upstox_key, upstox_gateway,
                                                                     fake_upstox):
    response = upstox_client.post("/api/v1/placegtt", json={"apikey": upstox_key, **OCO_SELL}, buffered=False)
    assert response.status_code == 200, response.get_json()
    trigger_id = response.get_json()["trigger_id"]  # an OCO id: only the gateway's record knows it
    cancelled = upstox_client.post("/api/v1/cancelgtt", json={"apikey": upstox_key, "trigger_id": trigger_id})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert upstox_gateway.orders.get(trigger_id).status == "cancelled"
    gtts = fake_upstox.gtts()
    assert len(gtts) == 2 and all(g["rules"][0]["status"] == "CANCELLED" for g in gtts)
    response.close()


def test_a_sandbox_tick_sent_the_moment_an_oco_answers_cancels_the_other_leg(client, api_key, gateway):
    """Nothing polls the sandbox: a tick settles what it fires as it fires it. A tick that fires
    one leg of an OCO the moment its place has answered finds the pair recorded, and cancels the
    other leg."""
    from openalgo_gtt.store.instruments import ensure_instruments

    def tick(ltp):
        return client.post("/api/v1/sandbox/ticks",
                           json={"apikey": api_key, "ticks": [{"symbol": "INFY", "exchange": "NSE", "ltp": ltp}]})

    ensure_instruments(gateway.engine)  # the bundled sample master, as `python run.py` loads it
    assert tick(1550).status_code == 200, tick(1550).get_json()
    response = client.post("/api/v1/placegtt", json={"apikey": api_key, **OCO_SELL})
    assert response.status_code == 200, response.get_json()
    trigger_id = response.get_json()["trigger_id"]
    ticked = tick(1475)
    assert ticked.status_code == 200 and len(ticked.get_json()["fired"]) == 1
    legs = sorted((rule.status for gtt in gateway.broker.list_gtts() for rule in gtt.rules))
    assert legs == ["CANCELLED", "COMPLETED"]
    assert gateway.orders.get(trigger_id).status == "triggered"


class _ProcessStopped(BaseException):
    """A kill: nothing after it runs, and the caller hears nothing."""


def test_a_process_that_stops_before_recording_is_settled_and_audited(upstox_client, upstox_key, upstox_gateway,
                                                                      fake_upstox, monkeypatch):
    def stop(*_args, **_kwargs):
        raise _ProcessStopped()

    monkeypatch.setattr(upstox_gateway.attempts, "recorded", stop)  # the broker made it; then the kill
    with pytest.raises(_ProcessStopped):
        upstox_client.post("/api/v1/placegtt", json={"apikey": upstox_key, **SINGLE})
    monkeypatch.undo()
    (gtt,) = fake_upstox.gtts()
    request_id = upstox_gateway.store.attempts.unsettled()[0].plan["order"]["request_id"]
    assert _audit_rows(upstox_gateway, request_id) == []
    with upstox_gateway.engine.begin() as conn:
        conn.execute(update(RequestRecord).values(holder=f"{socket.gethostname()}:999999:dead"))
        conn.execute(update(PlaceAttemptRow).values(holder=f"{socket.gethostname()}:999999:dead"))
    assert len(settle(upstox_gateway)) == 1
    assert upstox_gateway.orders.get(gtt["gtt_order_id"]) is not None
    (row,) = _audit_rows(upstox_gateway, request_id)
    assert row.http_status == 200 and row.response_body["trigger_id"] == gtt["gtt_order_id"]
    assert "stopped" in row.error
    assert upstox_gateway.trade_limit.today_count() == 1 and len(fake_upstox.gtts()) == 1
