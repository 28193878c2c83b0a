"""UpstoxBroker against the fake Upstox server over real sockets: round trips, pacing and the
failures that only a real connection shows (hangs, refusals, resets, slow bodies)."""
from __future__ import annotations

import socket
import threading
import time
from decimal import Decimal

import pytest

from openalgo_gtt.domain.model import (
    ABOVE, BUY, CANCELLED, ENTRY, FAILED, IMMEDIATE, INACTIVE, MULTIPLE, SCHEDULED, SINGLE,
    STOPLOSS, TARGET, GttRequest, GttRule, Quote,
)
from openalgo_gtt.brokers.errors import (
    BrokerFailure, BrokerTimeout, BrokerUnreachable, InputRejected, TokenRejected, UnreadableAnswer,
)
from openalgo_gtt.brokers.pacing import OrderPacer
from openalgo_gtt.brokers.upstox import UpstoxBroker
from tests.fakes.fake_upstox import FakeUpstox

TOKEN = "fake-access-token"
TIMEOUT = 0.3
IDEA = "NSE_EQ|INE669E01016"


@pytest.fixture
def fake():
    with FakeUpstox(token=TOKEN) as server:
        yield server


@pytest.fixture
def calls():
    return []


@pytest.fixture
def broker(fake, calls):
    client = UpstoxBroker(fake.url, TOKEN, timeout=TIMEOUT, pacer=None, observer=calls.append,
                          retry_backoff=0.01)
    yield client
    client.close()


def bracket(quantity=5):
    return GttRequest(MULTIPLE, IDEA, BUY, "D", quantity, (
        GttRule(ENTRY, ABOVE, Decimal("9.55")),
        GttRule(TARGET, IMMEDIATE, Decimal("10.2")),
        GttRule(STOPLOSS, IMMEDIATE, Decimal("9.1"), trailing_gap=Decimal("0.1")),
    ))


def test_place_modify_cancel_get_list_round_trip(fake, broker):
    fake.set_price(IDEA, "IDEA", "NSE_EQ", "9.5")
    gtt_id = broker.place_gtt(bracket())
    assert gtt_id.startswith("GTT-C") and len(gtt_id) == len("GTT-C26112200000001")

    placed = broker.get_gtt(gtt_id)
    assert (placed.type, placed.quantity, placed.trading_symbol, placed.segment) == (MULTIPLE, 5, "IDEA", "NSE_EQ")
    assert [(r.strategy, r.status, r.transaction_type) for r in placed.rules] == [
        (ENTRY, SCHEDULED, "BUY"), (TARGET, INACTIVE, "SELL"), (STOPLOSS, INACTIVE, "SELL")]
    assert placed.rules[0].trigger_price == Decimal("9.55")
    assert placed.rules[2].trailing_gap == Decimal("0.1")
    assert placed.created_at < placed.expires_at and placed.created_at.tzinfo is not None
    assert placed.can_fire

    single = GttRequest(SINGLE, IDEA, BUY, "D", 7, (GttRule(ENTRY, ABOVE, Decimal("9.60")),))
    assert broker.modify_gtt(gtt_id, single) == gtt_id
    modified = broker.get_gtt(gtt_id)
    assert (modified.type, modified.quantity, len(modified.rules)) == (SINGLE, 7, 1)
    assert modified.rules[0].trigger_price == Decimal("9.6")

    assert broker.cancel_gtt(gtt_id) == gtt_id
    cancelled = broker.get_gtt(gtt_id)
    assert {r.status for r in cancelled.rules} == {CANCELLED} and not cancelled.can_fire
    assert [g.gtt_id for g in broker.list_gtts()] == [gtt_id]
    assert broker.get_gtt("GTT-C99999999999999") is None


def test_rule_status_moved_by_the_test_shows_up(fake, broker):
    gtt_id = broker.place_gtt(bracket())
    fake.set_rule_status(gtt_id, ENTRY, FAILED, message="Circuit limit breached")
    entry = broker.get_gtt(gtt_id).rules[0]
    assert (entry.status, entry.message) == (FAILED, "Circuit limit breached")


def test_upstox_style_refusals_keep_code_and_message(fake, broker):
    no_entry = GttRequest(MULTIPLE, IDEA, BUY, "D", 1, (
        GttRule(TARGET, IMMEDIATE, Decimal("10")), GttRule(STOPLOSS, IMMEDIATE, Decimal("9"))))
    with pytest.raises(InputRejected) as caught:
        broker.place_gtt(no_entry)
    assert caught.value.code == "UDAPI100038" and "ENTRY" in caught.value.message
    with pytest.raises(InputRejected) as caught:
        broker.cancel_gtt("GTT-C00000000000404")
    assert caught.value.code == fake.unknown_gtt_code and caught.value.may_have_reached is False


def test_wrong_token_is_token_rejected(fake):
    broker = UpstoxBroker(fake.url, "stale", timeout=TIMEOUT, pacer=None)
    with pytest.raises(TokenRejected) as caught:
        broker.list_gtts()
    assert caught.value.code == "UDAPI100050"


def test_quotes(fake, broker):
    nifty = "NSE_INDEX|Nifty 50"
    fake.set_price(IDEA, "IDEA", "NSE_EQ", "9.55", open="9.40")
    fake.set_price(nifty, "Nifty 50", "NSE_INDEX", "22000.05")  # before the open
    assert broker.quotes([IDEA, nifty, "NSE_EQ|UNKNOWN"]) == {
        IDEA: Quote(IDEA, Decimal("9.55"), Decimal("9.4")),
        nifty: Quote(nifty, Decimal("22000.05"), None),
    }


def test_quotes_for_more_than_500_keys_are_batched(fake, broker):
    keys = [f"NSE_FO|{n}" for n in range(1100)]
    fake.set_price(keys[1099], "NIFTY FUT", "NSE_FO", "22100")
    assert list(broker.quotes(keys)) == [keys[1099]]  # the fake refuses more than 500 keys
    assert len(fake.calls_to("quote.ohlc")) == 3


def test_pacer_holds_a_burst_of_30_order_calls_to_10_per_second(fake):
    broker = UpstoxBroker(fake.url, TOKEN, timeout=2.0, pacer=OrderPacer(), pace_timeout=5.0)
    errors = []

    def place():
        try:
            broker.place_gtt(bracket())
        except Exception as exc:  # collected, so a failure shows up in the assertion below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=place) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert errors == []
    times = sorted(t for _, _, t in fake.calls_to("gtt.place"))
    assert len(times) == 30
    # Any 11 consecutive arrivals must span at least a second. The pacer records each hit a
    # moment before the request leaves, so allow a few ms of scheduling jitter in arrival.
    assert min(times[i + 10] - times[i] for i in range(20)) >= 1.0 - 0.03
    assert elapsed >= 1.95
    assert len(fake.gtts()) == 30


def test_hung_server_ends_in_timeout_within_bound(fake, broker):
    fake.inject("gtt.place", "hang", seconds=5)
    started = time.monotonic()
    with pytest.raises(BrokerTimeout) as caught:
        broker.place_gtt(bracket())
    assert time.monotonic() - started < TIMEOUT + 0.25
    assert caught.value.may_have_reached is True
    assert fake.gtts() == []  # it hung before doing anything; only the caller cannot know


def test_hung_read_is_not_retried(fake, broker):
    fake.inject("gtt.details", "hang", times=None, seconds=5)
    started = time.monotonic()
    with pytest.raises(BrokerTimeout) as caught:
        broker.list_gtts()
    assert time.monotonic() - started < TIMEOUT + 0.25
    assert caught.value.may_have_reached is False and len(fake.calls_to("gtt.details")) == 1


def test_a_failing_read_is_not_retried_past_the_requests_deadline(fake, calls):
    from openalgo_gtt.brokers import deadline

    client = UpstoxBroker(fake.url, TOKEN, timeout=TIMEOUT, pacer=None, observer=calls.append, retry_backoff=0.25)
    fake.inject("gtt.details", "500", times=None)
    deadline.start(0.4)  # a request with 0.4 s left at the broker: one retry (0.25 s) fits, the next (0.5 s) not
    try:
        started = time.monotonic()
        with pytest.raises(BrokerFailure):
            client.list_gtts()
        elapsed = time.monotonic() - started
    finally:
        deadline.clear()
        client.close()
    assert len(fake.calls_to("gtt.details")) == 2 and elapsed < 0.4


def test_trickled_body_is_cut_off_by_the_overall_deadline(fake, broker):
    fake.inject("gtt.place", "trickle", seconds=0.05)
    started = time.monotonic()
    with pytest.raises(BrokerTimeout) as caught:
        broker.place_gtt(bracket())
    assert time.monotonic() - started < 2 * TIMEOUT + 0.25
    assert caught.value.may_have_reached is True and len(fake.gtts()) == 1


def test_connection_refused_before_sending(calls):
    # A socket bound but never listening holds the port, so connecting to it is refused and
    # nothing else can grab the port meanwhile.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        broker = UpstoxBroker(f"http://127.0.0.1:{port}", TOKEN, timeout=TIMEOUT, pacer=None,
                              observer=calls.append, retry_backoff=0.01)
        with pytest.raises(BrokerUnreachable) as caught:
            broker.place_gtt(bracket())
        assert caught.value.may_have_reached is False  # no connection: nothing can have been done
        with pytest.raises(BrokerUnreachable):
            broker.list_gtts()
    assert [c.status for c in calls] == [None] * 4  # the write once, the read 1 + 2 retries


def test_connection_closed_without_answer(fake, broker, calls):
    fake.inject("gtt.place", "refuse")
    with pytest.raises(BrokerUnreachable) as caught:
        broker.place_gtt(bracket())
    # The request was sent before the close, so a write is ambiguous.
    assert caught.value.may_have_reached is True
    assert calls[-1].status is None

    fake.inject("gtt.details", "refuse")
    assert broker.list_gtts() == []  # a read retries over it
    assert len(fake.calls_to("gtt.details")) == 2


def test_reset_mid_body(fake, broker):
    fake.inject("gtt.place", "reset", after_work=True)
    with pytest.raises(BrokerUnreachable) as caught:
        broker.place_gtt(bracket())
    assert caught.value.may_have_reached is True and caught.value.http_status == 200
    assert len(fake.gtts()) == 1


@pytest.mark.parametrize("fault,error", [
    ("500", BrokerFailure),
    ("502_html", BrokerFailure),
    ("empty", UnreadableAnswer),
    ("truncated", UnreadableAnswer),
    ("missing_fields", UnreadableAnswer),
    ("hang", BrokerTimeout),
    ("refuse", BrokerUnreachable),
])
def test_work_done_but_answer_lost_is_flagged_may_have_reached(fake, broker, fault, error):
    fake.inject("gtt.place", fault, after_work=True, seconds=1)
    with pytest.raises(error) as caught:
        broker.place_gtt(bracket())
    assert caught.value.may_have_reached is True
    assert len(fake.gtts()) == 1  # Upstox did place it: a later layer must find it, not re-send


def test_a_held_place_times_out_and_is_done_when_released(fake, broker):
    fake.inject("gtt.place", "held")
    with pytest.raises(BrokerTimeout) as caught:
        broker.place_gtt(bracket())
    assert caught.value.may_have_reached is True
    assert fake.held == 1 and fake.gtts() == []  # still held, nothing done: the client gave up
    assert fake.release_held() == 1
    deadline = time.monotonic() + 5
    while not fake.gtts() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fake.gtts()) == 1 and fake.held == 0  # Upstox finished it, late
    assert broker.place_gtt(bracket())  # the fault was for that call only


def test_faults_that_refuse_up_front_do_nothing(fake, broker):
    fake.inject("gtt.place", "429")
    fake.inject("gtt.place", "401")
    with pytest.raises(Exception) as first:
        broker.place_gtt(bracket())
    with pytest.raises(TokenRejected):
        broker.place_gtt(bracket())
    assert first.value.may_have_reached is False and fake.gtts() == []
    assert broker.place_gtt(bracket())  # faults were for the next call each, then gone



def test_the_pacer_keeps_a_margin_so_no_broker_second_sees_more_than_ten():
    from openalgo_gtt.brokers.pacing import LATE_TOLERANCE, SEND_MARGIN, OrderPacer

    pacer = OrderPacer("10/second")
    sent = []
    for _ in range(25):
        pacer.acquire(timeout=10)
        sent.append(time.monotonic())
    # Any 11 consecutive calls leave more than a second apart: their slots are SEND_MARGIN more
    # than a second apart, and a call leaves within LATE_TOLERANCE of its slot (the rest of the
    # margin is the network's), yet no more than that: ten calls per 1.04 s is 9.6 a second.
    assert min(b - a for a, b in zip(sent, sent[10:])) >= 1.0 + SEND_MARGIN - LATE_TOLERANCE
    assert (sent[-1] - sent[0]) / (len(sent) - 1) <= 1.0 / 9.5
    assert max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent) <= 10


def test_the_pacer_never_holds_a_caller_below_the_rate(monkeypatch):
    """A place at a calm rate leaves at once: the pacer only makes bursts wait."""
    from openalgo_gtt.brokers import pacing

    pacer = pacing.OrderPacer("10/second;500/minute")
    real_sleep = time.sleep
    slept = []
    monkeypatch.setattr(pacing.time, "sleep", slept.append)
    for _ in range(12):  # 8 a second, as a steady stream of alerts would come
        pacer.acquire(timeout=10)
        real_sleep(0.125)
    assert slept == []
