"""Deleting old rows on the watcher's poll: the audit trail's and the notifications outbox's.

The lease holder calls `run` on every poll. It works at most once every `every`, deleting rows
older than `days` (0 keeps them forever) in batches of `batch` and at most `max_batches` of
them per call, so a poll is never held up for long. A call that stopped at the cap leaves the
next poll to go on, instead of waiting for the next interval.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable, Protocol

from openalgo_gtt.domain.clock import utcnow

log = logging.getLogger(__name__)


class Purgeable(Protocol):
    def purge_before(self, cutoff: datetime, batch: int) -> int:
        """Delete up to `batch` rows older than `cutoff`; how many went."""


class Retention:
    what = "rows"  # for the log line

    def __init__(self, rows: Purgeable, days: int, *, every: timedelta = timedelta(hours=1),
                 batch: int = 1000, max_batches: int = 10, clock: Callable[[], datetime] = utcnow):
        self._rows = rows
        self.days = days
        self._every = every
        self._batch = batch
        self._max_batches = max_batches
        self._clock = clock
        self._next_run: datetime | None = None

    def run(self) -> int:
        """Purge if it is time; returns how many rows were deleted."""
        if self.days <= 0:
            return 0
        now = self._clock()
        if self._next_run is not None and now < self._next_run:
            return 0
        cutoff = now - timedelta(days=self.days)
        deleted = 0
        for _ in range(self._max_batches):
            gone = self._rows.purge_before(cutoff, self._batch)
            deleted += gone
            if gone < self._batch:  # nothing older is left
                self._next_run = now + self._every
                break
        else:
            self._next_run = None  # stopped at the cap: go on at the next poll
        if deleted:
            log.info("%s retention: deleted %d older than %d days", self.what, deleted, self.days)
        return deleted
