"""The price index: for each instrument, sorted ladders (`bisect`) of the rules a tick can reach.

  up          rules that fire when ltp >= price, ascending by price;
  down        rules that fire when ltp <= price, ascending by -price (descending by price);
  trail_up / trail_down   trailing stops, by the price at which they next move.

A tick takes the prefix of each ladder it crosses, so it costs about the number of rules it
fires or moves, not the number that exist.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from decimal import Decimal

from openalgo_gtt.brokers.sandbox.model import Rule
from openalgo_gtt.domain.model import ABOVE, BUY, ENTRY, OPEN, SCHEDULED, SELL, STOPLOSS, TARGET


class Ladder:
    """Rules sorted by key. `take(limit)` removes and returns, in key order, every rule whose key
    is <= limit (< limit when strict)."""

    __slots__ = ("keys", "rules")

    def __init__(self) -> None:
        self.keys: list[Decimal] = []
        self.rules: list[Rule] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: Decimal, rule: Rule) -> None:
        at = bisect_right(self.keys, key)
        self.keys.insert(at, key)
        self.rules.insert(at, rule)

    def remove(self, key: Decimal, rule: Rule) -> None:
        keys, rules = self.keys, self.rules
        for at in range(bisect_left(keys, key), bisect_right(keys, key)):
            if rules[at] is rule:
                del keys[at]
                del rules[at]
                return

    def take(self, limit: Decimal, strict: bool = False) -> list[Rule]:
        keys = self.keys
        if not keys or keys[0] > limit or (strict and keys[0] == limit):
            return []
        count = bisect_left(keys, limit) if strict else bisect_right(keys, limit)
        taken = self.rules[:count]
        del keys[:count]
        del self.rules[:count]
        return taken


class Book:
    """One instrument's ladders; a tick asks it what it fires and which stops it moves."""

    __slots__ = ("up", "down", "trail_up", "trail_down")

    def __init__(self) -> None:
        self.up = Ladder()  # fires when ltp >= key
        self.down = Ladder()  # key = -price: fires when ltp <= price
        self.trail_up = Ladder()  # BUY-entry stops, key = stop + gap: move when ltp > key
        self.trail_down = Ladder()  # SELL-entry stops, key = gap - stop: move when ltp < stop - gap

    def take_crossed(self, ltp: Decimal) -> list[Rule]:
        """Remove and return the rules `ltp` fires, rising ladder first, each in price order."""
        taken = self.up.take(ltp) + self.down.take(-ltp)
        for rule in taken:
            rule.fire_slot = None
        return taken

    def take_trailed(self, ltp: Decimal) -> list[tuple[Rule, Decimal]]:
        """Remove from the trailing ladders the stops `ltp` moves; each with its new position."""
        if not (self.trail_up.keys or self.trail_down.keys):
            return []
        moved = []
        for rule in self.trail_up.take(ltp, strict=True):
            rule.trail_slot = None
            moved.append((rule, ltp - rule.trailing_gap))
        for rule in self.trail_down.take(-ltp, strict=True):
            rule.trail_slot = None
            moved.append((rule, ltp + rule.trailing_gap))
        return moved


def _fires_rising(rule: Rule) -> bool:
    """True when the rule fires as the price rises to it (ltp >= price), False as it falls."""
    if rule.strategy == ENTRY:
        if rule.status == OPEN:  # a resting LIMIT child: a BUY fills at or below, a SELL at or above
            return rule.transaction_type == SELL
        return rule.trigger_type == ABOVE
    buy_entry = rule.gtt.transaction_type == BUY
    return buy_entry if rule.strategy == TARGET else not buy_entry


class PriceIndex:
    """Every indexed rule, by instrument and price. Each rule records its own slots."""

    __slots__ = ("_books",)

    def __init__(self) -> None:
        self._books: dict[str, Book] = {}

    def __len__(self) -> int:
        """How many rules can fire on a tick now (those in the fire ladders)."""
        return sum(len(book.up) + len(book.down) for book in self._books.values())

    def add(self, rule: Rule) -> None:
        book = self._books.get(rule.gtt.instrument_key)
        if book is None:
            book = self._books[rule.gtt.instrument_key] = Book()
        price = rule.trigger_price
        if _fires_rising(rule):
            ladder, key = book.up, price
        else:
            ladder, key = book.down, -price
        ladder.add(key, rule)
        rule.fire_slot = (ladder, key)
        if rule.strategy == STOPLOSS and rule.trailing_gap is not None and rule.status == SCHEDULED:
            if rule.gtt.transaction_type == BUY:  # the stop rises: it moves once ltp > stop + gap
                ladder, key = book.trail_up, price + rule.trailing_gap
            else:  # the stop falls: it moves once ltp < stop - gap
                ladder, key = book.trail_down, rule.trailing_gap - price
            ladder.add(key, rule)
            rule.trail_slot = (ladder, key)

    def remove(self, rule: Rule) -> None:
        if rule.fire_slot is not None:
            ladder, key = rule.fire_slot
            ladder.remove(key, rule)
            rule.fire_slot = None
        if rule.trail_slot is not None:
            ladder, key = rule.trail_slot
            ladder.remove(key, rule)
            rule.trail_slot = None

    def instruments(self) -> list[str]:
        """The instruments with a rule that can fire (a live GTT's INACTIVE exits wait on an
        indexed ENTRY, so these are the instruments of every live GTT)."""
        return [key for key, book in self._books.items() if len(book.up) or len(book.down)]

    def book(self, instrument_key: str) -> Book | None:
        """The instrument's ladders; None when no rule on it was ever indexed."""
        return self._books.get(instrument_key)
