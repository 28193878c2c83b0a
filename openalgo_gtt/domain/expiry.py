"""A caller's own expiry of a GTT (`expires_at` on place): how it is read, and what is allowed.
Pure: the caller passes the time now.

The text is an ISO date or date-time; one without a zone is IST (an Indian market's clock). A date
alone means the end of that day in IST: the GTT is good through it. It must be in the future and
at most a year ahead; the broker's own expiry (Upstox: a year for delivery, the day for intraday;
Kite: a year) stays the outer bound, whichever comes first ends the GTT.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from openalgo_gtt.domain.clock import IST, as_utc, ist_text
from openalgo_gtt.domain.errors import DomainError

MAX_AHEAD = timedelta(days=365)
_END_OF_DAY = time(23, 59, 59)
# A date alone, extended (2026-12-31) or basic (20261231): the end of that day, however it is spelt.
_DATE_ONLY = re.compile(r"\d{4}-?\d{2}-?\d{2}")
FORMAT_RULE = ("must be an ISO date or date-time, such as 2026-12-31 or 2026-12-31 15:00 "
               "(IST unless it names a zone, as 2026-12-31T09:30:00Z)")


def parse_expiry(text: str) -> datetime:
    """The moment `text` names, in UTC; ValueError with FORMAT_RULE when it names none."""
    value = text.strip()
    try:
        if _DATE_ONLY.fullmatch(value):
            return as_utc(datetime.combine(date.fromisoformat(value), _END_OF_DAY, IST))
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(FORMAT_RULE) from None
    return as_utc(moment.replace(tzinfo=IST) if moment.tzinfo is None else moment)


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    """Refuse an expiry in the past (or now) or more than a year ahead (DomainError: a 400)."""
    if expires_at is None:
        return
    if expires_at <= now:
        raise DomainError(f"expires_at {ist_text(expires_at)} IST is not in the future",
                          details={"field": "expires_at"})
    if expires_at - now > MAX_AHEAD:
        raise DomainError(f"expires_at {ist_text(expires_at)} IST is more than a year ahead "
                          f"(at most {ist_text(now + MAX_AHEAD)} IST)", details={"field": "expires_at"})
