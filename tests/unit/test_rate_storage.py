"""The memory storage behind every rate window: it counts exactly as limits' own, without
starting a thread on the request path, and still frees what has expired."""
from __future__ import annotations

import gc
import threading
import weakref
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from openalgo_gtt.brokers.pacing import OrderPacer
from openalgo_gtt.rate_storage import SweptMemoryStorage, limits_uri, storage_for
from tests.waiting import until


CHANGED = ("limits {what}: openalgo_gtt/rate_storage.py relies on it. Re-run bench/bench_rate_storage.py "
           "and adapt SweptMemoryStorage to the new release, or drop it for the stock storage if it no longer pays.")


def test_the_limits_internals_the_swept_storage_relies_on_are_still_there(monkeypatch):
    """SweptMemoryStorage calls MemoryStorage's name-mangled expiry pass and stands its sweeper
    in the `timer` attribute that the stock storage checks (`is_alive`) before starting a Timer."""
    expire = getattr(MemoryStorage, "_MemoryStorage__expire_events", None)
    assert callable(expire), CHANGED.format(what="MemoryStorage has no __expire_events any more")
    assert callable(getattr(MemoryStorage, "_MemoryStorage__schedule_expiry", None)), \
        CHANGED.format(what="MemoryStorage has no __schedule_expiry any more")
    stock = MemoryStorage()
    try:
        assert isinstance(getattr(stock, "timer", None), threading.Timer), \
            CHANGED.format(what="MemoryStorage keeps no threading.Timer in `timer` any more")
    finally:
        stock.timer.cancel()
    # The stock storage still starts a thread on a hit after idle time: the reason for the sweeper.
    limiter = MovingWindowRateLimiter(MemoryStorage())
    item = parse("50/second")
    started = _count_thread_starts(monkeypatch)
    for _ in range(3):
        time.sleep(0.02)  # the stock Timer (10 ms) has run out
        assert limiter.hit(item, "caller")
    assert started, CHANGED.format(what="MemoryStorage no longer starts a Timer per idle hit (the sweeper may be "
                                        "pointless now)")


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


def test_one_sweeper_thread_sweeps_every_storage_and_keeps_none_alive(monkeypatch):
    storages = [SweptMemoryStorage() for _ in range(20)]
    sweepers = [t for t in threading.enumerate() if t.name == "rate-window-sweeper"]
    assert len(sweepers) == 1  # one thread for the process, however many storages (or apps) it builds
    monkeypatch.setattr(sweepers[0], "_interval", 0.05)
    storage = storages[0]
    MovingWindowRateLimiter(storage).hit(parse("1/second"), "k")
    until(lambda swept=storage: not any(swept.events.values()), "the sweeper dropped the expired entry")
    gone = weakref.ref(storage)
    del storage, storages
    # The sweeper holds storages weakly: a discarded one is freed. Polled, because a sweep in
    # progress holds its batch strongly for the moment it runs (every 50 ms here).
    until(lambda: gc.collect() is not None and gone() is None, "the discarded storage was freed")


def test_the_order_pacer_starts_no_thread_per_order(monkeypatch):
    pacer = OrderPacer("10/second;500/minute")
    started = _count_thread_starts(monkeypatch)
    for _ in range(3):
        time.sleep(0.02)
        pacer.acquire()
    assert started == []
