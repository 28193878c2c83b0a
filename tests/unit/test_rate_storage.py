"""The memory storage behind every rate window: it counts exactly as limits' own, without
starting a thread on the request path, and still frees what has expired."""
from __future__ import annotations

import gc
import threading
import time

from limits import parse
from limits.strategies import MovingWindowRateLimiter

from openalgo_gtt import rate_storage
from openalgo_gtt.brokers.pacing import OrderPacer
from openalgo_gtt.rate_storage import SweptMemoryStorage, limits_uri, storage_for
from tests.waiting import until


def test_memory_uris_get_the_swept_storage_and_redis_is_left_alone():
    assert isinstance(storage_for("memory://"), SweptMemoryStorage)
    assert limits_uri("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def _count_thread_starts(monkeypatch) -> list[str]:
    """The names of the threads started from now on."""
    started: list[str] = []
    original = threading.Thread.start

    def counting_start(thread):
        started.append(thread.name)
        return original(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    return started


def test_hits_at_a_callers_pace_start_no_thread(monkeypatch):
    limiter = MovingWindowRateLimiter(storage_for("memory://"))
    item = parse("50/second")
    started = _count_thread_starts(monkeypatch)
    for _ in range(5):
        time.sleep(0.02)  # longer than the stock storage's 10 ms timer
        assert limiter.hit(item, "caller")
    assert started == []


def test_the_window_still_counts_exactly():
    limiter = MovingWindowRateLimiter(storage_for("memory://"))
    item = parse("3/second")
    assert [limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(item, "other")  # windows are per key


def test_the_sweep_frees_expired_entries():
    storage = storage_for("memory://")
    limiter = MovingWindowRateLimiter(storage)
    limiter.hit(parse("5/second"), "k")
    assert storage.events
    time.sleep(1.05)
    storage.sweep()
    assert not any(storage.events.values())


def test_the_sweeper_runs_by_itself_and_ends_with_its_storage(monkeypatch):
    monkeypatch.setattr(rate_storage, "SWEEP_SECONDS", 0.05)
    storage = SweptMemoryStorage()
    sweeper = storage.timer
    MovingWindowRateLimiter(storage).hit(parse("1/second"), "k")
    until(lambda: not any(storage.events.values()), "the sweeper dropped the expired entry")
    del storage
    gc.collect()
    until(lambda: not sweeper.is_alive(), "the sweeper ended once its storage was gone")


def test_the_order_pacer_starts_no_thread_per_order(monkeypatch):
    pacer = OrderPacer("10/second;500/minute")
    started = _count_thread_starts(monkeypatch)
    for _ in range(3):
        time.sleep(0.02)
        pacer.acquire()
    assert started == []
