"""The sandbox's trigger engine: Upstox GTT rules simulated in memory. No database, no Flask.

What it models (see the reference notes on GTT v3):
- a SINGLE GTT is one ENTRY rule; ABOVE fires when the last price rises to the trigger
  (ltp >= trigger), BELOW when it falls to it (ltp <= trigger);
- an IMMEDIATE ENTRY sends its child order at once: a LIMIT at the trigger price, which fills
  at once when the last price already allows it (BUY: ltp <= price, SELL: ltp >= price) and
  otherwise rests (status OPEN) until a tick reaches it;
- a MULTIPLE GTT (bracket) is ENTRY plus TARGET and/or STOPLOSS; the exits sit INACTIVE until
  the ENTRY has filled, then both are armed (SCHEDULED). TARGET fires on the profitable side
  (BUY entry: ltp >= target; SELL: ltp <= target), STOPLOSS on the losing side; when one fires
  the other is CANCELLED;
- a STOPLOSS with a `trailing_gap` follows the price once armed (BUY entry:
  stop = max(stop, ltp - gap); SELL: stop = min(stop, ltp + gap)) and fires on the way back;
- a fired rule's child order fills as a LIMIT at the trigger price (the stop's position for a
  trailing stop): the rule goes TRIGGERED -> COMPLETED with an order id, and a fill is reported;
- intraday (I) GTTs expire at 23:59:59 IST of the day placed, delivery (D, MTF) a year later.
- ticks decide: placing never fires an ABOVE/BELOW rule, the next tick does. A rule fires at
  most once.

The GTTs themselves are `model.py`'s; which rules a tick reaches is `index.py`'s price index.
Every change made since the last `take_changes()` is journaled (`model.Changes`), so storage
writes only what changed.
"""
from __future__ import annotations

import heapq
import itertools
from datetime import datetime
from decimal import Decimal
from typing import Callable, Iterator

from openalgo_gtt.brokers.base import FiredEvent
from openalgo_gtt.brokers.sandbox.index import PriceIndex
from openalgo_gtt.brokers.sandbox.model import (
    CODE_NOT_FOUND, CODE_NOT_LIVE, INDEXED_STATUSES, Changes, Gtt, Rule, expiry_for, new_rules, rejected,
    validate_request,
)
from openalgo_gtt.domain.model import (
    BUY, CANCELLED, COMPLETED, ENTRY, EXPIRED, IMMEDIATE, INACTIVE, OPEN, SCHEDULED, GttRequest,
)

OrderIds = Callable[[datetime], str]


class TriggerEngine:
    """Every GTT the sandbox knows, with its live rules indexed by instrument and price.

    `order_ids(at)` names each child order; the caller may swap it (the broker hands out ids
    from a stored counter). Not thread-safe: the caller serialises access.
    """

    def __init__(self, order_ids: OrderIds) -> None:
        self.order_ids = order_ids
        self._gtts: dict[str, Gtt] = {}
        self._index = PriceIndex()
        self._expiry: list[tuple[datetime, int, Gtt]] = []  # heap; stale entries skipped lazily
        self._seq = itertools.count()
        self._changes = Changes()

    # ----- reading -----------------------------------------------------------------------------

    def get(self, gtt_id: str) -> Gtt | None:
        return self._gtts.get(gtt_id)

    def gtts(self) -> Iterator[Gtt]:
        return iter(self._gtts.values())

    def __len__(self) -> int:
        return len(self._gtts)

    def indexed_rules(self) -> int:
        """How many rules can fire on a tick now (those in the price ladders)."""
        return len(self._index)

    def live_instruments(self) -> list[str]:
        """The instruments of every live GTT, from the price index (no scan of the GTTs)."""
        return self._index.instruments()

    def take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    def live_gtt(self, gtt_id: str) -> Gtt:
        """The GTT, or InputRejected when it is unknown (404) or can no longer fire."""
        gtt = self._gtts.get(gtt_id)
        if gtt is None:
            raise rejected(f"GTT {gtt_id} not found", CODE_NOT_FOUND, 404)
        if not gtt.live:
            raise rejected(f"GTT {gtt_id} can no longer be modified or cancelled: it is "
                           f"{'/'.join(sorted({rule.status for rule in gtt.rules}))}", CODE_NOT_LIVE)
        return gtt

    # ----- commands ----------------------------------------------------------------------------

    def place(self, gtt_id: str, request: GttRequest, *, ltp: Decimal, at: datetime,
              trading_symbol: str = "") -> Gtt:
        """Add a new GTT. An IMMEDIATE ENTRY sends its order now, filling at once if `ltp` allows."""
        validate_request(request)
        if gtt_id in self._gtts:
            raise ValueError(f"duplicate GTT id {gtt_id}")
        gtt = Gtt(
            gtt_id=gtt_id, type=request.type, instrument_key=request.instrument_key,
            transaction_type=request.transaction_type, product=request.product, quantity=request.quantity,
            rules=new_rules(request), created_at=at, expires_at=expiry_for(request.product, at),
            trading_symbol=trading_symbol, updated_at=at,
        )
        for rule in gtt.rules:
            rule.updated_at = at
        self._gtts[gtt_id] = gtt
        heapq.heappush(self._expiry, (gtt.expires_at, next(self._seq), gtt))
        self._changes.placed.add(gtt_id)
        self._start(gtt, ltp, at)
        return gtt

    def modify(self, gtt_id: str, request: GttRequest, *, ltp: Decimal, at: datetime) -> Gtt:
        """Replace quantity and rules (instrument, product and side never change).

        Before the ENTRY has been sent everything is replaced as if placed anew. Once it has
        (OPEN or COMPLETED) the quantity and type are fixed and only the exits are replaced;
        the ENTRY rule of the request is then ignored.
        """
        gtt = self.live_gtt(gtt_id)
        validate_request(request)
        entry = gtt.rule(ENTRY)
        sent = entry is not None and entry.status != SCHEDULED
        if sent:
            if request.quantity != gtt.quantity:
                raise rejected("the quantity cannot be modified once the ENTRY order has been placed")
            if request.type != gtt.type:
                raise rejected("the type cannot be modified once the ENTRY order has been placed")
        rules = new_rules(GttRequest(
            type=request.type, instrument_key=gtt.instrument_key, transaction_type=gtt.transaction_type,
            product=gtt.product, quantity=request.quantity, rules=request.rules,
        ))
        for rule in gtt.rules:
            self._index.remove(rule)
        if sent:
            armed = entry.status == COMPLETED
            exits = [rule for rule in rules if rule.strategy != ENTRY]
            for rule in exits:
                rule.status = SCHEDULED if armed else INACTIVE
            gtt.rules = [entry, *exits]
        else:
            gtt.type, gtt.quantity, gtt.rules = request.type, request.quantity, rules
        for rule in gtt.rules:
            if not (sent and rule is entry):  # a sent ENTRY keeps its state and its time
                rule.gtt = gtt
                rule.updated_at = at
        gtt.updated_at = at
        self._changes.replaced.add(gtt_id)
        self._changes.touched.pop(gtt_id, None)
        if sent:
            self._index_rules(gtt)
        else:
            self._start(gtt, ltp, at)
        return gtt

    def cancel(self, gtt_id: str, at: datetime) -> Gtt:
        gtt = self.live_gtt(gtt_id)
        self._end(gtt, CANCELLED, at, "cancelled by the user")
        return gtt

    def expiry_due(self, now: datetime) -> bool:
        return bool(self._expiry) and self._expiry[0][0] < now

    def expire(self, now: datetime) -> list[Gtt]:
        """Expire every GTT whose validity ended before `now`; returns those that changed."""
        expired = []
        heap = self._expiry
        while heap and heap[0][0] < now:
            expires_at, _, gtt = heapq.heappop(heap)
            if self._gtts.get(gtt.gtt_id) is not gtt or gtt.expires_at != expires_at or not gtt.live:
                continue
            self._end(gtt, EXPIRED, now, "the GTT expired")
            expired.append(gtt)
        return expired

    def tick(self, instrument_key: str, ltp: Decimal, at: datetime) -> list[FiredEvent]:
        """Apply one last price to the instrument's rules; returns the fills, in firing order."""
        book = self._index.book(instrument_key)
        if book is None:
            return []
        fired: list[FiredEvent] = []
        while True:  # an ENTRY fill arms exits that this same price may already reach
            taken = book.take_crossed(ltp)
            if not taken:
                break
            for rule in taken:
                if rule.status in INDEXED_STATUSES:  # a sibling fired earlier in this pass cancels it
                    self._fill(rule, ltp, at, fired)
        for rule, stop in book.take_trailed(ltp):
            self._move_stop(rule, stop, at)
        return fired

    # ----- restoring ---------------------------------------------------------------------------

    def load(self, gtt: Gtt) -> None:
        """Add (or replace) a GTT exactly as stored, indexing its live rules."""
        self.drop(gtt.gtt_id)
        for rule in gtt.rules:
            rule.gtt = gtt
            rule.fire_slot = rule.trail_slot = None
        self._gtts[gtt.gtt_id] = gtt
        if gtt.live:
            heapq.heappush(self._expiry, (gtt.expires_at, next(self._seq), gtt))
            self._index_rules(gtt)

    def drop(self, gtt_id: str) -> None:
        gtt = self._gtts.pop(gtt_id, None)
        if gtt is not None:
            for rule in gtt.rules:
                self._index.remove(rule)

    # ----- internals ---------------------------------------------------------------------------

    def _index_rules(self, gtt: Gtt) -> None:
        for rule in gtt.rules:
            if rule.status in INDEXED_STATUSES:
                self._index.add(rule)

    def _start(self, gtt: Gtt, ltp: Decimal, at: datetime) -> None:
        """Index a (re)placed GTT; an IMMEDIATE ENTRY sends its LIMIT child now."""
        entry = gtt.rule(ENTRY)
        if entry.trigger_type == IMMEDIATE:
            # TRIGGERED: the child order exists now; it fills when the price allows.
            entry.order_id = self.order_ids(at)
            entry.status = OPEN
            marketable = ltp <= entry.trigger_price if entry.transaction_type == BUY else ltp >= entry.trigger_price
            if marketable:
                self._fill(entry, ltp, at, [])
                return
        self._index.add(entry)

    def _touch(self, rule: Rule) -> None:
        gtt_id = rule.gtt.gtt_id
        changes = self._changes
        if gtt_id in changes.placed or gtt_id in changes.replaced:
            return  # written whole anyway
        changes.touched.setdefault(gtt_id, {}).setdefault(rule.strategy, rule.status)

    def _end(self, gtt: Gtt, status: str, at: datetime, message: str, *, keep: Rule | None = None) -> None:
        """Move every live rule of `gtt` but `keep` to a final `status` (cancelled, expired)."""
        for rule in gtt.rules:
            if rule is not keep and rule.live:
                self._touch(rule)
                self._index.remove(rule)
                rule.status = status
                rule.message = message
                rule.updated_at = at
        gtt.updated_at = at

    def _fill(self, rule: Rule, ltp: Decimal, at: datetime, fired: list[FiredEvent]) -> None:
        self._touch(rule)
        self._index.remove(rule)
        gtt = rule.gtt
        if rule.order_id is None:
            rule.order_id = self.order_ids(at)
        rule.status = COMPLETED  # TRIGGERED, then its LIMIT child filled at the trigger price
        rule.message = None
        rule.updated_at = at
        gtt.updated_at = at
        event = FiredEvent(
            gtt_id=gtt.gtt_id, instrument_key=gtt.instrument_key, strategy=rule.strategy,
            trigger_type=rule.trigger_type, transaction_type=rule.transaction_type, quantity=gtt.quantity,
            price=rule.trigger_price, ltp=ltp, order_id=rule.order_id, at=at,
            market=rule.market_protection is not None, product=gtt.product,
        )
        fired.append(event)
        self._changes.fires.append(event)
        if rule.strategy == ENTRY:  # arm the exits
            for other in gtt.rules:
                if other.status == INACTIVE:
                    self._touch(other)
                    other.status = SCHEDULED
                    other.updated_at = at
                    self._index.add(other)
        else:  # one exit filled: the other is cancelled
            self._end(gtt, CANCELLED, at, f"cancelled: the {rule.strategy} rule filled", keep=rule)

    def _move_stop(self, rule: Rule, stop: Decimal, at: datetime) -> None:
        self._touch(rule)
        self._index.remove(rule)
        rule.trigger_price = stop
        rule.updated_at = at
        self._index.add(rule)
