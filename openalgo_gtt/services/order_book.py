"""The order book: the broker's GTT list joined with the gateway's records, as OpenAlgo lists it,
and one trigger's entry for the status call.

Order books are polled, often by several callers at once. An answer must reflect the broker as
it was after the request arrived (a caller that has just placed or cancelled must see it), so an
answer is never taken from a fetch that began earlier. Callers that arrive together share the
next fetch instead (`Coalescer`), and that fetch (`Snapshot`) carries everything that is the same
for all of them: the list, our records, the last prices, the entries and their encoded JSON.

Plain Python, no Flask: the API layer only picks the variant and wraps the body.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Generic, TypeVar

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.domain.model import NATIVE_OCO, BrokerGtt, Quote, TriggerKind, TriggerStatus
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.clock import as_utc, ist_text
from openalgo_gtt.domain.book import book_entry, last_change
from openalgo_gtt.domain.oco import LOWER, UPPER, cancelled_by_gateway, leg_state, pair_book_entry, pair_status
from openalgo_gtt.domain.symbols import SEGMENT_TO_EXCHANGE
from openalgo_gtt.domain.encoding import dumps
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.instruments import InstrumentIndex

log = logging.getLogger(__name__)

# The order book's last prices may be this old (it shows them for orientation, nothing is
# computed from them).
QUOTE_CACHE_SECONDS = 1.0
_PAIR_ROLES = frozenset({LOWER, UPPER})
# Entries kept for reuse by later snapshots; past this many the cache starts over.
ENTRY_CACHE_SIZE = 4096

T = TypeVar("T")


# -- sharing fetches ------------------------------------------------------------------------

class _Run:
    """One call of the fetch, and the callers that take its outcome."""

    __slots__ = ("started", "done", "value", "error", "waiting")

    def __init__(self) -> None:
        self.started = False
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.waiting = 0

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class Coalescer(Generic[T]):
    """Calls `fetch` for concurrent callers so that each caller's result comes from a call that
    started after the caller arrived, and callers arriving together share one call.

    A caller that finds no call under way makes one. A caller that arrives while one is under
    way may not take its result (it may predate what the caller just did at the broker); it
    waits for the next call instead, which every caller arriving meanwhile shares: one of them
    makes it, the others wait for its result or its exception. So N callers at once cost about
    two calls, and a steady stream about one call per call's duration.
    """

    def __init__(self, fetch: Callable[[], T]):
        self._fetch = fetch
        self._cond = threading.Condition()
        # The call under way; or, for a moment after the previous one ended, the next call,
        # which one of its waiters is about to make.
        self._running: _Run | None = None
        self._next: _Run | None = None  # gathers the callers arriving while `_running` runs
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Callers waiting for a call that another caller makes."""
        with self._cond:
            return self._waiting

    def get(self) -> T:
        with self._cond:
            run = self._running
            if run is None:
                run = self._running = _Run()
            else:
                if run.started:
                    run = self._next = self._next or _Run()
                self._wait_for_turn(run)
                if run.done:
                    return run.outcome()
            run.started = True
        try:
            value = self._fetch()
        except BaseException as exc:
            self._finish(run, None, exc)
            raise
        self._finish(run, value, None)
        return value

    def _wait_for_turn(self, run: _Run) -> None:
        """Until `run` is over, or it is the next call and nobody has made it yet (then the
        caller makes it). Called with the lock held."""
        run.waiting += 1
        self._waiting += 1
        try:
            while not run.done and (self._running is not run or run.started):
                self._cond.wait()
        except BaseException:
            if run.waiting == 1 and not run.started:  # nobody else would make it
                if self._next is run:
                    self._next = None
                elif self._running is run:
                    self._running, self._next = self._next, None
                    self._cond.notify_all()
            raise
        finally:
            run.waiting -= 1
            self._waiting -= 1

    def _finish(self, run: _Run, value: Any, error: BaseException | None) -> None:
        with self._cond:
            run.value, run.error, run.done = value, error, True
            self._running, self._next = self._next, None
            self._cond.notify_all()


# -- entries --------------------------------------------------------------------------------

def names(instruments: InstrumentIndex, gtt: BrokerGtt) -> tuple[str, str, bool]:
    """(symbol, exchange, is_derivative) from the master, for GTTs placed elsewhere too."""
    info = instruments.by_key(gtt.instrument_key)
    if info is not None:
        return info.symbol, info.exchange, info.is_derivative
    exchange = SEGMENT_TO_EXCHANGE.get(gtt.segment, gtt.segment)
    return gtt.trading_symbol, exchange, gtt.segment.endswith("_FO")


def gtt_entry(instruments: InstrumentIndex, gtt: BrokerGtt, last_price: Decimal | None, recorded: Any) -> dict:
    """One broker GTT's entry; `recorded` is the gateway's record of its trigger (a GttOrder or a
    `GttOrders.book_records` row) or None when it was placed elsewhere."""
    symbol, exchange, is_derivative = names(instruments, gtt)
    record = None
    if recorded is not None:
        # One leg of a two-GTT pair shows as a single of its own; a native OCO is the trigger.
        pair_leg = recorded.trigger_type == TriggerKind.TWO_LEG and gtt.type != NATIVE_OCO
        record = {
            "trigger_id": gtt.gtt_id if pair_leg else recorded.trigger_id,
            "trigger_type": TriggerKind.SINGLE if pair_leg else recorded.trigger_type,
            "product": recorded.product,
            "placed_at": recorded.placed_at,
            "modified_at": recorded.modified_at,
            "cancelled_at": recorded.cancelled_at,
            "updated_at": recorded.state_changed_at,
            "strategy": recorded.strategy,
            "expires_at": recorded.expires_at,
            "status": recorded.status,
            "status_message": recorded.status_message,
        }
    return book_entry(gtt, symbol=symbol, exchange=exchange, last_price=last_price,
                      is_derivative=is_derivative, recorded=record)


def pair_sides(instruments: InstrumentIndex, recorded: Any, lower: BrokerGtt | None, upper: BrokerGtt | None,
               last_price: Decimal | None) -> list[dict]:
    """The entries of a two-leg trigger's legs (lower, then upper), each from its broker GTT, or
    from the record for a leg the broker no longer lists."""
    sides = []
    states = (leg_state(lower), leg_state(upper))
    for i, (gtt, leg) in enumerate(((lower, recorded.legs[0]), (upper, recorded.legs[1]))):
        side = (gtt_entry(instruments, gtt, last_price, recorded) if gtt is not None
                else recorded_entry(recorded, [leg], last_price))
        # A leg the gateway cancelled because the other fired says so, not the broker's words
        # for any cancel ("cancelled by the user").
        why = cancelled_by_gateway(states[i], recorded.broker_ids[1 - i], states[1 - i])
        if why is not None:
            side = {**side, "legs": [{**each, "message": why} for each in side["legs"]]}
        sides.append(side)
    return sides


def pair_entry(instruments: InstrumentIndex, recorded: Any, lower: BrokerGtt | None, upper: BrokerGtt | None,
               last_price: Decimal | None, legs_changed_at: datetime | None = None) -> dict:
    """A two-leg trigger's entry from its record (a GttOrder) and its legs at the broker;
    `legs_changed_at` is the watcher's latest change of a recorded leg (when the broker gives no
    time of its own, it is the time the pair was settled)."""
    sides = pair_sides(instruments, recorded, lower, upper, last_price)
    status = pair_status(leg_state(lower), leg_state(upper))
    if status == TriggerStatus.ACTIVE and recorded.status != TriggerStatus.ACTIVE:
        status = recorded.status  # cancelled through the gateway; Upstox may lag a moment
    elif status == TriggerStatus.CANCELLED and recorded.status == TriggerStatus.EXPIRED:
        status = recorded.status  # the gateway cancelled it at its expires_at
    entry = pair_book_entry(sides[0], sides[1], trigger_id=recorded.trigger_id, status=status,
                            message=recorded.status_message)
    # A leg's record is stamped with the place's time: only a later one is a change.
    if legs_changed_at is not None and as_utc(legs_changed_at) > as_utc(recorded.placed_at):
        entry["updated_at"] = max(entry["updated_at"], ist_text(legs_changed_at))
    return entry


def recorded_entry(recorded: Any, legs: list[dict], last_price: Decimal | None) -> dict:
    """An entry from the gateway's record alone, for legs the broker no longer lists."""
    return {
        "trigger_id": recorded.trigger_id,
        "trigger_type": recorded.trigger_type,
        "status": recorded.status,
        "message": recorded.status_message,
        "symbol": recorded.symbol,
        "exchange": recorded.exchange,
        "trigger_prices": sorted(Decimal(leg["trigger_price"]) for leg in legs),
        "last_price": last_price if last_price is not None else Decimal(0),
        "legs": [_leg_from_record(leg) for leg in legs],
        "created_at": ist_text(recorded.placed_at),
        "updated_at": ist_text(last_change(recorded.modified_at, recorded.cancelled_at, recorded.state_changed_at)),
        "expires_at": ist_text(recorded.expires_at),
        "strategy": recorded.strategy or "",
    }


def _leg_from_record(leg: dict) -> dict:
    """A recorded leg (prices kept as exact strings) as the order book shows legs."""
    prices = {k: Decimal(leg[k]) for k in ("trigger_price", "price", "trailing_gap") if leg.get(k) is not None}
    return {**leg, **prices, "status": None, "order_id": None, "message": None}


# -- the book -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BookView:
    """One order book answer. Shared by every caller of the same snapshot: read it, never
    change it."""

    entries: tuple[dict, ...]
    trigger_ids: tuple[str, ...]
    data_json: str  # `entries` as the API answers them (domain.encoding.dumps), encoded once


class Snapshot:
    """The broker's list and our records as fetched once; each variant of the book (live
    triggers, or every one) is built from it on first demand and then shared."""

    def __init__(self, book: OrderBook, gtts: list[BrokerGtt], legs: dict[str, tuple[str, str]],
                 records: dict[str, Any], pairs: dict[str, Any], pair_changes: dict[str, datetime] | None = None):
        self._book = book
        self.gtts = gtts
        self.legs = legs  # broker id -> (trigger id, role) of every listed GTT we recorded as a leg
        self.records = records  # trigger id -> book row of each listed GTT that is its own trigger
        self.pairs = pairs  # trigger id -> the record (GttOrder) of each two-leg trigger with a listed leg
        self.pair_changes = pair_changes or {}  # trigger id -> the latest change of its recorded legs
        self._views: dict[bool, BookView] = {}
        self._lock = threading.Lock()

    def view(self, include_all: bool) -> BookView:
        with self._lock:  # the callers sharing this snapshot build each variant once
            view = self._views.get(include_all)
            if view is None:
                view = self._views[include_all] = self._build(include_all)
            return view

    def _build(self, include_all: bool) -> BookView:
        instruments, pairs = self._book.instruments, self.pairs
        by_id = {gtt.gtt_id: gtt for gtt in self.gtts}
        singles = [gtt for gtt in self.gtts if self.legs.get(gtt.gtt_id, ("", ""))[1] not in _PAIR_ROLES]
        if not include_all:
            singles = [gtt for gtt in singles if gtt.can_fire]
        pair_gtts = {trigger_id: [by_id.get(broker_id) for broker_id in record.broker_ids]
                     for trigger_id, record in pairs.items()}
        if not include_all:
            pair_gtts = {t: pair for t, pair in pair_gtts.items()
                         if pair_status(leg_state(pair[0]), leg_state(pair[1])) == TriggerStatus.ACTIVE
                         and pairs[t].status == TriggerStatus.ACTIVE}
        keys = sorted({gtt.instrument_key for gtt in singles} | {pairs[t].instrument_key for t in pair_gtts})
        quotes = self._book.quotes(keys)
        encoded = [self._book.single_entry(gtt, _last(quotes, gtt.instrument_key), self.records.get(gtt.gtt_id))
                   for gtt in singles]
        for t, (lower, upper) in pair_gtts.items():
            pair = pair_entry(instruments, pairs[t], lower, upper, _last(quotes, pairs[t].instrument_key),
                              self.pair_changes.get(t))
            encoded.append((pair, dumps(pair)))
        # Newest first (created_at has whole seconds: the id, issued in order, breaks ties); with
        # every state, the ones that can still fire first, newest first within each group.
        encoded.sort(key=lambda item: (item[0]["created_at"], item[0]["trigger_id"]), reverse=True)
        if include_all:
            encoded.sort(key=lambda item: item[0]["status"] != TriggerStatus.ACTIVE)
        # With compact separators a list encodes as its items' encodings joined by commas.
        return BookView(tuple(e for e, _ in encoded), tuple(e["trigger_id"] for e, _ in encoded),
                        "[" + ",".join(text for _, text in encoded) + "]")


def _last(quotes: dict[str, Quote], key: str) -> Decimal | None:
    quote = quotes.get(key)
    return quote.last_price if quote is not None else None


class OrderBook:
    """Triggers that can still fire (or every one): per fetch, one list call, the gateway's
    records of the listed GTTs, and one batched quote call (or none, within a second)."""

    def __init__(self, broker: Broker, instruments: InstrumentIndex, orders: GttOrders):
        self.broker = broker
        self.instruments = instruments
        self.orders = orders
        self._quote_cache: dict[str, tuple[float, Quote]] = {}
        self._entries: dict[tuple, tuple[dict, str]] = {}
        self._snapshots: Coalescer[Snapshot] = Coalescer(self._fetch)

    def view(self, include_all: bool = False) -> BookView:
        """The book as the broker and our records stood after this call began."""
        return self._snapshots.get().view(include_all)

    @property
    def waiting(self) -> int:
        """Callers waiting for a fetch another caller makes."""
        return self._snapshots.waiting

    def _fetch(self) -> Snapshot:
        gtts = self.broker.list_gtts()
        legs, records = self.orders.book_records([gtt.gtt_id for gtt in gtts])
        pairs = self.orders.by_trigger_ids(sorted({trigger_id for trigger_id, role in legs.values()
                                                   if role in _PAIR_ROLES}))
        pair_changes: dict[str, datetime] = {}
        if pairs:  # the watcher's times of its changes to the legs
            recorded_legs = self.orders.legs_by_broker_id([b for record in pairs.values() for b in record.broker_ids])
            for leg in recorded_legs.values():
                pair_changes[leg.trigger_id] = last_change(pair_changes.get(leg.trigger_id), leg.updated_at)
        return Snapshot(self, gtts, legs, records, pairs, pair_changes)

    def single_entry(self, gtt: BrokerGtt, last_price: Decimal | None, record: Any) -> tuple[dict, str]:
        """The entry of a GTT that is not an OCO leg, and its JSON. Most of a polled book is what
        it was a moment ago, so both are kept, keyed by everything the entry is made of."""
        key = (gtt, names(self.instruments, gtt), last_price, None if record is None else tuple(record))
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= ENTRY_CACHE_SIZE:
                self._entries.clear()
            made = gtt_entry(self.instruments, gtt, last_price, record)
            found = self._entries[key] = (made, dumps(made))
        return found

    def quotes(self, keys: list[str]) -> dict[str, Quote]:
        """Last prices, from a cache at most QUOTE_CACHE_SECONDS old: a burst of book requests
        costs one quote call, not one each."""
        now = time.monotonic()
        cached = {k: hit[1] for k in keys if (hit := self._quote_cache.get(k)) and now - hit[0] < QUOTE_CACHE_SECONDS}
        missing = [k for k in keys if k not in cached]
        if not missing:
            return cached
        try:
            fetched = self.broker.quotes(missing)
        except BrokerError as exc:
            # The book is still worth having without prices; last_price 0 means "unknown".
            log.warning("order book without last prices: %s", exc)
            return cached
        self._quote_cache.update((k, (now, q)) for k, q in fetched.items())
        return {**cached, **fetched}
