"""A burst's places: queued when no send slot is free within the caller's patience, then sent
in arrival order by the lease holder, each exactly once, with its outcome told to the trader."""
from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal

import pytest

from openalgo_gtt.brokers import deadline as broker_deadline
from openalgo_gtt.brokers.errors import PacingTimeout
from openalgo_gtt.domain.model import EventKind
from openalgo_gtt.domain.place_attempt import AttemptState
from openalgo_gtt.services.planner import Order
from openalgo_gtt.domain.intent import PlaceIntent
from tests.unit.test_place_service import Services


@pytest.fixture
def services(db_engine):
    return Services(db_engine)


@contextmanager
def within_patience(seconds: float = 2.5):
    """A request's budget, as the API gives every place (the caller's patience)."""
    broker_deadline.start(seconds)
    try:
        yield
    finally:
        broker_deadline.clear()


def burst_place(services, trigger="9.61", *, key=None, queue=True, force=False):
    """A place arriving while a burst holds every send slot within its caller's patience."""
    services.broker.pacer_full = True
    ctx = services.context()
    order = Order("IDEA", "NSE", PlaceIntent(trigger_type="SINGLE", action="BUY", product="CNC", quantity=10,
                                             triggerprice_tg=Decimal(trigger)), queue=queue, force=force)
    body = {"symbol": "IDEA", "exchange": "NSE", "triggerprice_tg": trigger}
    try:
        with within_patience():
            answer, status = services.place(ctx, order, body, key)
    finally:
        services.broker.pacer_full = False
    return answer, status, ctx


def send_all(services) -> int:
    sent = 0
    while services.queue.dispatch_next(wait_for_send=True):
        sent += 1
    return sent


def kinds(services, trigger_id):
    return [event.kind for event, _ in services.store.outbox.events_for(trigger_id)]


def test_a_place_with_no_slot_in_time_is_queued_then_placed_once_and_told(services):
    answer, status, ctx = burst_place(services, key="alert-1")
    assert status == 202 and answer["status"] == "queued" and answer["position"] == 1
    assert answer["request_id"] == ctx.request_id and answer["eta_seconds"] >= 1
    assert services.broker.place_calls == 0 and services.limit.today_count() == 0  # no trade until its turn
    assert services.store.audit.exists(ctx.request_id)  # the 202 is audited like any answer
    assert send_all(services) == 1
    (gtt,) = services.broker.live()
    recorded = services.store.orders.get(gtt.gtt_id)
    assert recorded is not None and recorded.request_id == ctx.request_id
    assert services.limit.today_count() == 1
    assert EventKind.QUEUED_PLACED in kinds(services, gtt.gtt_id)
    again, status, _ = services.place_single("9.61", key="alert-1")  # TradingView's retry, or the caller's
    assert status == 200 and again["trigger_id"] == gtt.gtt_id and again["duplicate"] is True
    assert services.broker.place_calls == 1


def test_a_duplicate_of_a_queued_alert_answers_the_queued_entry_and_places_nothing(services):
    first, _, _ = burst_place(services)
    again, status, _ = burst_place(services)  # the same body again: the same request
    assert status == 202 and again["duplicate"] is True and again["original_request_id"] == first["request_id"]
    assert send_all(services) == 1 and services.broker.place_calls == 1


def test_the_queue_is_sent_in_arrival_order(services):
    answers = [burst_place(services, price)[0] for price in ("9.61", "9.62", "9.63")]
    assert [a["position"] for a in answers] == [1, 2, 3]
    send_all(services)
    placed = sorted(services.broker.live(), key=lambda gtt: gtt.gtt_id)  # the broker numbers them in order
    assert [str(gtt.rules[0].trigger_price) for gtt in placed] == ["9.61", "9.62", "9.63"]


def test_a_queued_place_that_finds_the_days_limit_used_is_rejected_and_told(services):
    services.limit.limit = 1
    burst_place(services, "9.61")
    _, _, ctx = burst_place(services, "9.62")
    assert send_all(services) == 2
    assert services.broker.place_calls == 1 and services.limit.today_count() == 1  # never past the limit
    attempt = services.store.attempts.of_request(ctx.request_id)
    assert attempt.state == AttemptState.REFUSED
    record = services.store.requests.get(attempt.record_id)
    assert record.response_status == 429 and "limit" in record.response_body["message"]
    assert EventKind.REJECTED in kinds(services, ctx.request_id)  # no GTT: filed under the request


def test_forced_queued_place_passes_the_limit(services):
    services.limit.limit = 0
    burst_place(services, force=True)
    send_all(services)
    assert services.broker.place_calls == 1


def test_queue_false_answers_429_as_before(services):
    with pytest.raises(PacingTimeout, match="queue: false"):
        burst_place(services, queue=False)
    assert services.store.attempts.oldest_queued() is None and services.broker.place_calls == 0


def test_a_queued_place_whose_send_lapses_is_queued_again_and_placed_once(services):
    _, _, ctx = burst_place(services)
    services.broker.next_place_faults = ["before"]  # the send times out; nothing was placed
    send_all(services)
    assert services.store.attempts.of_request(ctx.request_id).state == AttemptState.SETTLING
    services.pass_settling_window()
    services.settle()  # nothing at the broker: it lapses, and its request is queued again
    assert services.store.attempts.of_request(ctx.request_id).state == AttemptState.QUEUED
    send_all(services)
    (gtt,) = services.broker.live()
    assert services.store.orders.get(gtt.gtt_id).request_id == ctx.request_id
    assert services.limit.today_count() == 1 and services.broker.place_calls == 2


def test_a_queued_place_whose_answer_was_lost_is_found_not_placed_again(services):
    _, _, ctx = burst_place(services)
    services.broker.next_place_faults = ["lost"]  # the broker made it; the answer never came
    send_all(services)
    (gtt,) = services.broker.live()
    assert services.store.orders.get(gtt.gtt_id) is not None  # found at once by the lookup
    assert services.broker.place_calls == 1 and services.limit.today_count() == 1
