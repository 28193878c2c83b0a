"""SANDBOX_PRICES=upstox: the sandbox's prices read from Upstox's quote API (issue 27).

About once a second, one batched LTP call (up to 500 keys a call) covers every instrument the
sandbox needs a price for: those of live sandbox GTTs, open paper orders and open positions.
The call first takes a slot from a quote pacer (shared between worker processes like the order
pacer), so however many symbols are watched it costs at most one call a second. The prices go
through the sandbox's trigger engine exactly as pushed ticks do (one `apply_ticks`, then the
watcher settles what fired). Only the quote API is ever called: the source is a `QuoteSource`,
which has no order or GTT method.

A missing or rejected token, or Upstox failing, leaves every GTT and position as it is: the
prices go stale, and `describe()` (on /api/health) says since when and why; reads resume as
soon as a token works again. A key Upstox does not answer for is logged once, not every read.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Callable

from openalgo_gtt.brokers.base import LiveFed, QuoteSource, Tick, TickSink
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.clock import SYSTEM_CLOCK, Clock, ist_text

log = logging.getLogger(__name__)

READ_INTERVAL = 1.0  # seconds between reads (the quote pacer enforces it across processes)
PACE_WAIT = 5.0  # a read waits at most this long for its pacing slot, then skips this round


class LivePrices:
    def __init__(self, sandbox: TickSink, source: QuoteSource, *, source_name: str,
                 settle: Callable[[list[str]], None], pace: Callable[[float], object] | None = None,
                 may_read: Callable[[], bool] = lambda: True, clock: Clock = SYSTEM_CLOCK,
                 interval: float = READ_INTERVAL) -> None:
        if not isinstance(sandbox, LiveFed):
            raise TypeError("live prices drive the sandbox broker only")
        self._sandbox = sandbox
        self._source = source
        self.source_name = source_name
        self._settle = settle
        self._pace = pace
        self._may_read = may_read  # only the watcher's lease holder reads (one reader for every worker)
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_price_at: datetime | None = None
        self.stale_since: datetime | None = None
        self.error: str | None = None
        self._unknown: set[str] = set()  # keys the quote API did not answer for, reported once

    def read_once(self) -> int:
        """One read of every watched instrument; returns how many prices it applied."""
        keys = self._sandbox.watched_instruments()
        return self._read(keys) if keys else 0

    def fetch(self, keys: list[str]) -> None:
        """The prices of instruments the sandbox has none for yet (a place on a new symbol):
        one paced read of just those. A failure leaves them without a price (the place says so)."""
        self._read(keys)

    def _read(self, keys: list[str]) -> int:
        """One paced, batched read of `keys`, applied as ticks; what fired is settled at once."""
        with self._lock:
            try:
                if self._pace is not None:
                    self._pace(PACE_WAIT)
                quotes = self._source.last_prices(keys)
            except BrokerError as exc:
                self._went_stale(exc.message)
                return 0
            now = self._clock.now()
            self._report_unknown([key for key in keys if key not in quotes])
            ticks = [Tick(key, quotes[key].last_price) for key in keys if key in quotes]
            fired = self._sandbox.apply_ticks(ticks) if ticks else []
            changed = list(dict.fromkeys([event.gtt_id for event in fired] + self._sandbox.take_expired()))
            if changed:
                self._settle(changed)
            if ticks:
                self.last_price_at, self.stale_since, self.error = now, None, None
            return len(ticks)

    def _went_stale(self, why: str) -> None:
        if self.stale_since is None:
            self.stale_since = self.last_price_at or self._clock.now()
            log.warning("sandbox prices from %s are stale: %s", self.source_name, why)
        self.error = why

    def _report_unknown(self, missing: list[str]) -> None:
        new = [key for key in missing if key not in self._unknown]
        if new:
            self._unknown.update(new)
            log.warning("%s's quote API does not know %s: the sandbox gets no price for %s",
                        self.source_name, ", ".join(new), "it" if len(new) == 1 else "them")

    def describe(self) -> dict:
        """For /api/health: the source, how old the last price is, and since when it is stale."""
        now = self._clock.now()
        age = None if self.last_price_at is None else round((now - self.last_price_at).total_seconds(), 1)
        return {"source": self.source_name, "last_price_at": ist_text(self.last_price_at) or None,
                "age_seconds": age, "stale_since": ist_text(self.stale_since) or None, "error": self.error,
                "unknown_instruments": sorted(self._unknown)}

    # ----- the reading thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._may_read():
                    self.read_once()
            except Exception:  # noqa: BLE001 - the reader must outlive a bad pass (the database away)
                log.exception("sandbox price read failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-prices", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
