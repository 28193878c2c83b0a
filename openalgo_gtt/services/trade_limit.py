"""The daily trade limit: successful places per IST day.

A trade is taken before the broker is called, in the same transaction as the place's intent
(services/place.py), so a crash can never leave a reservation nobody knows about. A place that
certainly failed gives its trade back; `force` bypasses the limit and still counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

from openalgo_gtt.domain.clock import ist_today, utcnow
from openalgo_gtt.domain.errors import TradeLimitReached
from openalgo_gtt.domain.model import EventKind
from openalgo_gtt.domain.notifications import Event
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.store.trade_counter import TradeCounters
from openalgo_gtt.store.unit_of_work import UnitOfWork


def trades_text(count: int, limit: int, forced: int) -> str:
    """Today's trades as the page header and health say them: "7 of 10", "18 of 10, 8 forced"."""
    return f"{count} of {limit}" + (f", {forced} forced" if forced else "")


@dataclass(frozen=True)
class Reservation:
    day: date
    count: int  # today's count including this trade


class DailyTradeLimit:
    def __init__(self, counters: TradeCounters, limit: int, notifications: Notifications,
                 today: Callable[[], date] = ist_today):
        self._notifications = notifications
        self._counters = counters
        self.limit = limit
        self._today = today

    def today(self) -> date:
        return self._today()

    def take(self, uow: UnitOfWork, day: date, force: bool) -> Reservation:
        """Count one trade on `day` in the caller's unit of work, or raise TradeLimitReached,
        which rolls it back with whatever else it wrote."""
        count = uow.take_trade(day, None if force else self.limit)
        if count is None:
            raise TradeLimitReached(self.limit, self.limit)
        if count == self.limit:
            # The trade that fills the day tells the trader, in its own transaction. (Should this
            # place certainly fail, its trade is given back and a later one tells again.)
            self._notifications.emit(uow, Event(
                kind=EventKind.DAILY_LIMIT_REACHED, at=utcnow(), extra={"count": count, "limit": self.limit},
                message=f"{count} of {self.limit} trades today: further places are refused until midnight IST "
                        "(send force=true to override)"))
        return Reservation(day, count)

    def release(self, day: date) -> None:
        """Give back a trade whose place certainly did not happen."""
        self._counters.give_back(day)

    def today_count(self) -> int:
        return self._counters.count(self._today())

    def forced_beyond(self, count: int) -> int:
        """How many of `count` trades went past the limit: only `force` takes the count over it,
        so the trades above the limit are the forced ones ("18 of 10, 8 forced")."""
        return max(0, count - self.limit)
