"""Rate windows at a trader's pace: limits' stock MemoryStorage versus SweptMemoryStorage.

`openalgo_gtt/rate_storage.py` reaches into limits' MemoryStorage (it calls the name-mangled
expiry pass and stands a long-lived sweeper thread in the storage's `timer` attribute) so that a
hit never starts a thread. That is only worth its fragility if it is measurably cheaper, so this
benchmark runs the rate-limit work of one SINGLE place, as the gateway does it, with each storage:

    the caller limits (CallerLimits.breach: 50/second and 600/minute by default),
    the failed-key throttle for a caller with a good key (known_good_here, note_good),
    the order pacer (OrderPacer.acquire: 10/second, 500/minute, 2000/30 minutes).

Places are spaced PACE_S apart, as alerts are (far more than the stock storage's 10 ms timer),
and the two storages take turns, each going first in every other round, so both see the same
machine. Reported: the median and p95 of the hits' wall time per place, for each storage.

    python bench/bench_rate_storage.py [--quick] [--out FILE]
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import median, pct, row, standalone  # noqa: E402

from openalgo_gtt import rate_storage  # noqa: E402
from openalgo_gtt.brokers.pacing import OrderPacer  # noqa: E402
from openalgo_gtt.services.abuse import (  # noqa: E402
    DEFAULT_FAILED_KEY_LIMIT, DEFAULT_RATE_LIMIT, CallerLimits, FailedKeyThrottle, make_storage,
)

PACE_S = 0.2  # one place per storage every 200 ms: idle far longer than the stock 10 ms timer, and
# slower than the pacer's 10/second (with its margin) and 500/minute, so the pacer never waits
WARMUP = 5


@contextmanager
def _stock_storage():
    """Everything built inside gets limits' own MemoryStorage for memory:// (bench only)."""
    original = rate_storage.limits_uri
    rate_storage.limits_uri = lambda uri: uri
    try:
        yield
    finally:
        rate_storage.limits_uri = original


class _Place:
    """The rate-limit work of one SINGLE place, on one kind of storage."""

    def __init__(self, name: str):
        self.name = name
        self.caller_limits = CallerLimits(DEFAULT_RATE_LIMIT, "memory://", f"bench-{name}")
        self.throttle = FailedKeyThrottle(make_storage("memory://"), DEFAULT_FAILED_KEY_LIMIT, f"bench-{name}")
        self.pacer = OrderPacer(key=f"bench-{name}")
        self.storage_types = sorted({type(self.caller_limits._shared.storage).__name__,
                                     type(self.pacer._limiter.storage).__name__})
        self.times: list[float] = []
        self.threads: list[int] = []

    def __call__(self) -> None:
        before = _thread_starts[0]
        started = time.perf_counter()
        if self.caller_limits.breach("caller-1") is not None:
            raise RuntimeError("the caller limits refused a paced place")
        if not self.throttle.known_good_here("fingerprint-1"):
            self.throttle.retry_after("127.0.0.1")
        self.throttle.note_good("fingerprint-1")
        self.pacer.acquire(timeout=5)
        self.times.append(time.perf_counter() - started)
        self.threads.append(_thread_starts[0] - before)


_thread_starts = [0]


@contextmanager
def _counting_thread_starts():
    original = threading.Thread.start

    def start(thread):
        _thread_starts[0] += 1
        return original(thread)

    threading.Thread.start = start
    try:
        yield
    finally:
        threading.Thread.start = original


def run(quick: bool = False) -> dict:
    n = 40 if quick else 300
    with _stock_storage():
        stock = _Place("stock")
    swept = _Place("swept")
    if stock.storage_types != ["MemoryStorage"] or swept.storage_types != ["SweptMemoryStorage"]:
        raise RuntimeError(f"unexpected storages: {stock.storage_types}, {swept.storage_types}")
    with _counting_thread_starts():
        for i in range(WARMUP + n):
            for place in (stock, swept) if i % 2 else (swept, stock):
                slot = time.perf_counter()
                place()
                time.sleep(max(0.0, slot + PACE_S / 2 - time.perf_counter()))
    for place in (stock, swept):
        del place.times[:WARMUP], place.threads[:WARMUP]

    def us(seconds: float) -> float:
        return round(seconds * 1e6, 1)

    saved = median(stock.times) - median(swept.times)
    rows = [
        row("stock MemoryStorage: hits per place, median / p95 (us)",
            f"{us(median(stock.times))} / {us(pct(stock.times, 95))}"),
        row("SweptMemoryStorage: hits per place, median / p95 (us)",
            f"{us(median(swept.times))} / {us(pct(swept.times, 95))}"),
        row("threads started per place, stock / swept",
            f"{sum(stock.threads) / n:.2f} / {sum(swept.threads) / n:.2f}"),
        row("saved per place by the sweeper, median (us)", us(saved)),
        row("stock / swept, median", round(median(stock.times) / median(swept.times), 2)),
    ]
    return {
        "title": f"Rate windows at a trader's pace ({n} places per storage, {PACE_S * 1000:.0f} ms apart, "
                 "caller limits + failed-key throttle + order pacer)",
        "rows": rows,
        "notes": [f"storages: stock {stock.storage_types}, swept {swept.storage_types}"],
        "data": {
            "n": n, "pace_s": PACE_S,
            "stock_median_us": us(median(stock.times)), "stock_p95_us": us(pct(stock.times, 95)),
            "swept_median_us": us(median(swept.times)), "swept_p95_us": us(pct(swept.times, 95)),
            "saved_median_us": us(saved),
            "stock_threads_per_place": sum(stock.threads) / n, "swept_threads_per_place": sum(swept.threads) / n,
        },
    }


if __name__ == "__main__":
    sys.exit(standalone(run))
