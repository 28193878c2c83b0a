"""Last price and day open per instrument, as the sandbox's ticks set them. No database."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable

from openalgo_gtt.domain.clock import IST
from openalgo_gtt.domain.model import Quote


@dataclass(slots=True)
class QuoteState:
    last_price: Decimal
    open: Decimal
    day: date  # the IST day `open` belongs to
    at: datetime


class QuoteBook:
    """The latest quote per instrument. The first tick of a later IST day sets that day's open,
    unless the tick carries its own `open`. `changed` collects the keys storage must write: those
whose price, open or day changed (the time of a repeated price is kept in memory only)."""

    def __init__(self) -> None:
        self._quotes: dict[str, QuoteState] = {}
        self.changed: set[str] = set()
        self._reopened: set[str] = set()  # of `changed`: new, or their open or day changed too
        self._last_day: tuple[datetime, date] | None = None  # a batch's ticks share one time: one IST date

    def get(self, instrument_key: str) -> QuoteState | None:
        return self._quotes.get(instrument_key)

    def put(self, instrument_key: str, state: QuoteState) -> None:
        self._quotes[instrument_key] = state

    def update(self, instrument_key: str, ltp: Decimal, day_open: Decimal | None, at: datetime) -> QuoteState:
        if self._last_day is None or self._last_day[0] != at:
            self._last_day = (at, at.astimezone(IST).date())
        day = self._last_day[1]
        quote = self._quotes.get(instrument_key)
        if quote is None:
            quote = self._quotes[instrument_key] = QuoteState(ltp, day_open or ltp, day, at)
            self._reopened.add(instrument_key)
        else:
            before = (quote.last_price, quote.open, quote.day)
            quote.last_price = ltp
            quote.at = at
            if day > quote.day:
                quote.open, quote.day = day_open or ltp, day
            elif day_open is not None and day == quote.day:
                quote.open = day_open
            if (quote.last_price, quote.open, quote.day) == before:
                # The same price again (most symbols, most seconds, on live prices): nothing
                # another process or a restart would read differently, so nothing to write.
                return quote
            if (quote.open, quote.day) != before[1:]:
                self._reopened.add(instrument_key)
        self.changed.add(instrument_key)
        return quote

    def take_changed(self) -> tuple[list[tuple[str, QuoteState]], set[str]]:
        """The quotes changed since the last call, by instrument key; and the keys among them
        whose open and day are as last taken (only their price and time need writing)."""
        changed = [(key, self._quotes[key]) for key in sorted(self.changed)]
        prices_only = self.changed - self._reopened
        self.discard_changes()
        return changed, prices_only

    def discard_changes(self) -> None:
        self.changed.clear()
        self._reopened.clear()

    def quotes(self, instrument_keys: Iterable[str]) -> dict[str, Quote]:
        out = {}
        for key in instrument_keys:
            quote = self._quotes.get(key)
            if quote is not None:
                out[key] = Quote(key, quote.last_price, quote.open)
        return out
