"""The order pacer's schedule, on this process's clock: what a burst, a calm stream, a late
wake-up and a full schedule each get."""
from __future__ import annotations

import time

import pytest

from openalgo_gtt.brokers import pacing
from openalgo_gtt.brokers.errors import PacingTimeout
from openalgo_gtt.brokers.pacing import SEND_MARGIN, MemorySchedule, OrderPacer


def test_any_eleven_consecutive_slots_span_more_than_a_second_and_the_margin(monkeypatch):
    # A clock that moves 1 ms per reading, so each slot is known exactly: rebuilding slots from
    # the real clock read beside reserve() mixes two readings and can reorder equal slots.
    ticks = iter(range(10**6))
    monkeypatch.setattr(pacing.time, "monotonic", lambda: 1000.0 + next(ticks) / 1000)
    schedule, slots = MemorySchedule(), []
    for _ in range(35):
        now = time.monotonic() + 0.001  # the reading reserve() takes next
        slots.append(now + schedule.reserve([(10, 1.0 + SEND_MARGIN)], None)[0])
    assert slots == sorted(slots)
    assert min(b - a for a, b in zip(slots, slots[10:])) >= 1.0 + SEND_MARGIN - 0.001
    assert slots[9] - slots[0] < 0.05  # the first ten go at once: a burst is not spread out


def test_every_window_holds_the_slowest_one_decides():
    schedule = MemorySchedule()
    windows = [(10, 1.2), (12, 60.2)]
    waits = [schedule.reserve(windows, None)[0] for _ in range(13)]
    assert waits[11] < 1.5 and waits[12] >= 60.0  # the 13th waits for the minute window


def test_a_full_schedule_refuses_within_the_wait_and_takes_nothing():
    pacer = OrderPacer("2/minute")
    pacer.acquire(0), pacer.acquire(0)
    with pytest.raises(PacingTimeout):
        pacer.acquire(timeout=0.05)
    assert pacer._schedule.reserve(pacer.windows, 0.0) is None  # still full: the refusal took no slot


def test_a_caller_that_wakes_too_late_takes_a_new_slot_instead_of_crowding_the_next(monkeypatch):
    pacer = OrderPacer("10/second")
    for _ in range(10):
        pacer.acquire()
    real_sleep, oversleeps = time.sleep, [0.3]

    def sleepy(seconds):  # the first wake-up comes 300 ms late (a busy CPU)
        real_sleep(seconds + (oversleeps.pop() if oversleeps else 0))

    monkeypatch.setattr(pacing.time, "sleep", sleepy)
    reserve, taken = pacer._schedule.reserve, []
    monkeypatch.setattr(pacer._schedule, "reserve", lambda *args: taken.append(reserve(*args)) or taken[-1])
    pacer.acquire()
    assert len(taken) == 2 and taken[0][0] > 1.0  # it slept to its slot, woke late, and took another
    assert len(pacer._schedule._slots) == 1  # the new one only: the late one went back (the ten aged out)


def test_a_calm_stream_below_the_rate_never_waits(monkeypatch):
    pacer = OrderPacer("10/second;500/minute")
    real_sleep, slept = time.sleep, []
    monkeypatch.setattr(pacing.time, "sleep", slept.append)
    for _ in range(12):  # 8 a second, as a steady stream of alerts would come
        pacer.acquire(timeout=10)
        real_sleep(0.125)
    assert slept == []


def test_an_unsupported_storage_is_refused_at_startup():
    with pytest.raises(ValueError, match="memory:// or a redis://"):
        OrderPacer(storage_uri="redis+sentinel://host:26379/mymaster")


def test_a_refused_redis_paces_in_memory_and_is_left_alone_for_the_pause(caplog):
    pacer = OrderPacer("2/second", storage_uri="redis://127.0.0.1:1/0")  # nothing listens there
    started = time.monotonic()
    pacer.acquire(timeout=0.5), pacer.acquire(timeout=0.5)
    assert time.monotonic() - started < 0.5
    with pytest.raises(PacingTimeout):  # the memory schedule still holds the limit
        pacer.acquire(timeout=0.1)
    warnings = [r for r in caplog.records if "shared schedule is unavailable" in r.getMessage()]
    assert len(warnings) == 1  # Redis was tried once, then left alone for the pause


def test_a_redis_that_never_answers_costs_one_call_a_second_then_none(caplog):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as hung:  # accepts, then never answers
        pacer = OrderPacer("10/second", storage_uri=f"redis://127.0.0.1:{hung.getsockname()[1]}/0")
        started = time.monotonic()
        pacer.acquire(timeout=2.0)
        first = time.monotonic() - started
        started = time.monotonic()
        pacer.acquire(timeout=2.0)
        second = time.monotonic() - started
    assert pacing.REDIS_TIMEOUT <= first < pacing.REDIS_TIMEOUT + 0.5
    assert second < 0.1  # paced in memory without waiting on Redis again


def test_a_slow_reply_from_the_shared_schedule_counts_as_lateness():
    import threading

    class SlowFirstReply(MemorySchedule):
        """A shared schedule whose first reply reaches the worker 0.3 s after the slot was taken
        (a slow network, a busy Redis, a starved worker), inside the Redis timeout."""

        def __init__(self):
            super().__init__()
            self.first = True

        def reserve(self, windows, max_wait):
            wait = super().reserve(windows, max_wait)
            if self.first:
                self.first = False
                time.sleep(0.3)
            return wait

    pacer = OrderPacer("10/second")
    pacer._schedule = SlowFirstReply()
    sent: list[float] = []
    lock = threading.Lock()

    def call():
        pacer.acquire(timeout=10)
        with lock:
            sent.append(time.monotonic())  # the write follows at once (http.py)

    first = threading.Thread(target=call)
    first.start()
    time.sleep(0.05)  # the first caller's slot is taken; its reply is still on its way
    others = [threading.Thread(target=call) for _ in range(19)]
    [t.start() for t in others]
    [t.join() for t in [first, *others]]
    sent.sort()
    assert max(sum(1 for t in sent if s <= t < s + 1.0) for s in sent) <= 10


def test_slots_held_and_not_used_go_back_to_the_schedule():
    pacer = OrderPacer("2/minute")
    with pacer.hold(2, within=0.0) as held:  # a place holds its OCO's two calls, then sends neither
        assert len(held.slots) == 2
        assert pacer.hold(1, within=1.0) is None  # meanwhile the minute is full
    pacer.acquire(0), pacer.acquire(0)  # both were given back: no call went out in them


def test_a_call_inside_a_hold_uses_the_held_slot():
    pacer = OrderPacer("1/minute")
    with pacer.hold(1, within=0.0):
        pacer.acquire(0)  # the held slot, not a second one (the minute has only one)
    with pytest.raises(PacingTimeout):
        pacer.acquire(0)  # and it was used, not given back


def test_a_hold_is_all_or_nothing_within_its_bound():
    pacer = OrderPacer("10/second")
    assert pacer.hold(11, within=0.5) is None  # the eleventh lies a second and more away
    assert len(pacer._schedule._slots) == 0  # the ten it could take went back
    assert len(pacer.hold(10, within=0.5).slots) == 10


def test_a_slot_given_back_through_redis_is_free_again(redis_url):
    url, prefix, _client = redis_url
    pacer = OrderPacer("1/minute", storage_uri=url, key=prefix)
    pacer.reserve(0.0).give_back()
    pacer.acquire(0)  # the minute's one slot is free again
    with pytest.raises(PacingTimeout):
        pacer.acquire(0)
