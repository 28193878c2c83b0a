"""Time in one place: UTC for storage, IST for the trading day and for what people read."""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    IST = ZoneInfo("Asia/Kolkata")
except ZoneInfoNotFoundError:  # Windows without the tzdata package; IST has no daylight saving
    IST = timezone(timedelta(hours=5, minutes=30), "IST")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def ist_today(now: datetime | None = None) -> date:
    """The Indian trading day (the daily trade limit resets at midnight IST)."""
    return (now or utcnow()).astimezone(IST).date()


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored moment made timezone-aware: SQLite hands datetimes back naive, and everything
    the gateway stores is UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def ist_text(moment: datetime | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in IST, as OpenAlgo shows times; "" when unknown."""
    if moment is None:
        return ""
    return as_utc(moment).astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


class Clock:
    """The time exactly once, the recovery, the late pass and the watcher read: injected, so a
    test or the simulation (bench/simulate.py) moves it instead of sleeping through a window."""

    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = Clock()


class ManualClock(Clock):
    """A clock that moves only when told (or when something sleeps on it): the deterministic
    simulation's, and the tests' that cross a settling window without waiting for it."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)  # 09:30 IST
        self._monotonic = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds
