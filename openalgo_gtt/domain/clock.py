"""Time in one place: UTC for storage, IST for the trading day and for what people read."""
from __future__ import annotations

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
