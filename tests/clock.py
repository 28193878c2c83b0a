"""A clock for tests that run real threads and servers but must cross a time window (a place's
settling window, a record's dedupe window) without sleeping through it: the system's time plus
an offset the test moves forward."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from openalgo_gtt.domain.clock import Clock, utcnow


class OffsetClock(Clock):
    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
