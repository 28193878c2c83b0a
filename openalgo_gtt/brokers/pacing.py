"""Client-side pacing of order calls, so a burst waits its turn instead of collecting 429s.

Upstox counts every order API call of a user together (GTT included): 10 per second, 500 per
minute and 2000 per 30 minutes for a regular algo. One `OrderPacer` must be shared by every
broker client of the process (and, through a Redis storage URI, by several processes).
"""
from __future__ import annotations

import threading
import time
from collections import deque

from limits import RateLimitItem, parse_many
from limits.strategies import MovingWindowRateLimiter

from openalgo_gtt.brokers.errors import PacingTimeout
from openalgo_gtt.rate_storage import storage_for

DEFAULT_ORDER_RATES = "10/second;500/minute;2000/30 minutes"

# Slack added to each computed wait: the moving window frees a slot only strictly after the
# oldest entry's expiry, so sleeping exactly to the reset time can come back a hair too early.
_WAIT_SLACK = 0.002

# The windows alone let a whole window's worth of calls leave together the moment it frees up,
# and a few milliseconds of network jitter then puts 11 in one of Upstox's seconds. Locally the
# shortest window is also enforced over a 10% longer span: any 11 consecutive calls of this
# process leave at least 1.1 s apart, which leaves 100 ms for jitter. A calm caller never waits.
WINDOW_MARGIN = 1.1


class OrderPacer:
    """Blocks each order call until every rate window has room, then records it.

    `rates` is a `limits` rate string; `storage_uri` a `limits` storage URI ("memory://" by
    default, "redis://host:6379" to share the windows between processes); `key` names the
    windows in that storage (use one key per Upstox user).
    """

    def __init__(
        self,
        rates: str = DEFAULT_ORDER_RATES,
        *,
        storage_uri: str = "memory://",
        key: str = "upstox-orders",
    ) -> None:
        self._items: list[RateLimitItem] = parse_many(rates)
        if not self._items:
            raise ValueError(f"no rate limits in {rates!r}")
        self._limiter = MovingWindowRateLimiter(storage_for(storage_uri))
        self._key = key
        # Checking every window and then hitting every window must be one step, or two threads
        # could both see the last free slot. The lock is held while waiting too: nobody else
        # could go ahead anyway, and it lines waiters up instead of having them all poll.
        self._lock = threading.Lock()
        self.rates = rates
        shortest = min(self._items, key=lambda item: item.get_expiry())
        self.margin_span = WINDOW_MARGIN * shortest.get_expiry()
        self._recent: deque[float] = deque(maxlen=shortest.amount)  # this process's last sends

    def acquire(self, timeout: float | None = None) -> float:
        """Wait for room in every window and take one slot; returns the seconds waited.

        Raises `PacingTimeout` when no room can be had within `timeout` seconds (None waits as
        long as needed). Nothing is recorded when it raises.
        """
        started = time.monotonic()
        deadline = None if timeout is None else started + max(timeout, 0.0)
        lock_wait = -1 if timeout is None else max(timeout, 0.0)
        if not self._lock.acquire(timeout=lock_wait):
            raise self._timeout_error(timeout)
        try:
            while True:
                # Taking the slots is tried first: when there is room (nearly always) that is the
                # whole cost, and the windows are only read to size the wait when there is not.
                wait = self._margin_wait()
                if wait <= 0 and self._hit_all():
                    self._recent.append(time.monotonic())
                    return time.monotonic() - started
                wait = max(wait, self._wait_needed(), _WAIT_SLACK)
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0 or wait > left:
                        # Sleeping out the rest would not be enough: fail now, not at the deadline.
                        raise self._timeout_error(timeout)
                time.sleep(wait)
        finally:
            self._lock.release()

    def _margin_wait(self) -> float:
        """Seconds until the call a full window ago is `margin_span` old (0 when it already is)."""
        if len(self._recent) < self._recent.maxlen:
            return 0.0
        return self._recent[0] + self.margin_span - time.monotonic()

    def _wait_needed(self) -> float:
        """Seconds until every window has a free slot (0 when they all do now)."""
        now = time.time()  # `limits` keeps its windows on the wall clock
        wait = 0.0
        for item in self._items:
            stats = self._limiter.get_window_stats(item, self._key)
            if stats.remaining <= 0:
                wait = max(wait, stats.reset_time - now + _WAIT_SLACK)
        return wait

    def _hit_all(self) -> bool:
        """Record the call in every window. In one process the lock makes this all-or-nothing;
        with a shared storage another process can win a slot in between, in which case the
        windows already hit keep the extra entry: that only makes pacing stricter, never looser."""
        return all(self._limiter.hit(item, self._key) for item in self._items)

    def _timeout_error(self, timeout: float | None) -> PacingTimeout:
        return PacingTimeout(
            f"order pacer: no room within {timeout}s at {self.rates}",
            may_have_reached=False,
        )
