"""SandboxBroker: the `Broker` protocol over simulated Upstox GTTs, for a machine with no account.

Prices come from pushed ticks (`apply_ticks`, the `TickSink` protocol), which also fire the
triggers. The trigger index lives in memory (`engine.TriggerEngine`, quotes in
`quotes.QuoteBook`); the `SandboxStorage` it is given (`storage.py`) is the truth it is rebuilt
from, so a new SandboxBroker on the same storage carries on where the last one stopped. Each
write is one storage transaction that first claims the turn: within a process a lock serialises
callers, across processes the storage does, and the process catches up on what others wrote
before acting. A trigger therefore fires once however many threads or processes push ticks.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Callable, Iterable, Sequence, TypeVar

from openalgo_gtt.brokers.base import FiredEvent, Tick
from openalgo_gtt.brokers.errors import InputRejected
from openalgo_gtt.brokers.pacing import SlotHold, unpaced
from openalgo_gtt.brokers.sandbox.engine import TriggerEngine
from openalgo_gtt.brokers.sandbox.paper import PaperDesk
from openalgo_gtt.brokers.sandbox.model import (
    CODE_ID_FORMAT, CODE_ID_MISSING, check_tick, rejected, validate_request,
)
from openalgo_gtt.brokers.sandbox.quotes import QuoteBook
from openalgo_gtt.brokers.sandbox.storage import (
    Conflict, Fill, InstrumentNames, Meta, SandboxStorage, StateReader, StateWriter,
)
from openalgo_gtt.domain.clock import IST, utcnow
from openalgo_gtt.domain.model import UPSTOX_FEATURES, BrokerGtt, GttRequest, OrderFill, Quote
from openalgo_gtt.domain.paper import PaperOrder, PaperTrade, Position

log = logging.getLogger(__name__)

T = TypeVar("T")

TICKS_ENDPOINT = "POST /api/v1/sandbox/ticks"
CODE_NO_PRICE = "SANDBOX-NO-PRICE"


class NoPriceYet(InputRejected):
    """A GTT was placed for an instrument the sandbox has never seen a tick for. The message names
    it as the caller does (OpenAlgo symbol and exchange) when the instrument master knows it."""

    def __init__(self, instrument_key: str, names: InstrumentNames | None = None) -> None:
        if names is not None:
            what = f"{names.symbol} on {names.exchange}"
            body = f' {{"symbol": "{names.symbol}", "exchange": "{names.exchange}", "ltp": ...}}'
        else:  # not in the instrument master: the key is the only name there is
            what, body = f"instrument {instrument_key}", ""
        super().__init__(
            f"the sandbox has no price for {what} yet: push a tick for it with {TICKS_ENDPOINT}{body}, "
            "then place the GTT again",
            code=CODE_NO_PRICE, http_status=409, may_have_reached=False,
        )
        self.instrument_key = instrument_key


def _check_id(gtt_id: str) -> str:
    if not isinstance(gtt_id, str) or not gtt_id.strip():
        raise rejected("gtt_order_id is required", CODE_ID_MISSING)
    gtt_id = gtt_id.strip()
    if not gtt_id.startswith("GTT-"):
        raise rejected(f"gtt_order_id must start with GTT- (got {gtt_id!r})", CODE_ID_FORMAT)
    return gtt_id


class SandboxBroker:
    """Simulated Upstox GTTs. Thread-safe; several processes may share one database."""

    name = "sandbox"
    features = UPSTOX_FEATURES  # it models Upstox's GTTs

    def __init__(self, storage: SandboxStorage, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._storage = storage
        self._clock = clock
        self._lock = threading.RLock()
        self._meta: Meta | None = None  # counters of the write in progress
        self._desk: PaperDesk | None = None  # the paper desk of the write in progress
        self._names: dict[str, tuple[str, str]] = {}  # (symbol, exchange) by instrument key, for paper orders
        # The open paper orders as this process's last committed write left them, and that write's
        # generation: the next write reuses them only if no other write (of any process) came since.
        self._open_cache: tuple[int, list[PaperOrder]] | None = None
        self._seen: int | None = None  # the generation memory reflects; None: reload everything
        self._engine = TriggerEngine(self._next_order_id)
        self._quotes = QuoteBook()
        self._stored_quotes: set[str] = set()
        self._meta_ensured = False  # the store is first touched on first use, not at build time
        self._expired: list[str] = []  # GTTs expired by this process, until take_expired()
        # With live prices (services/live_prices.py): asked for the price of instruments the
        # sandbox has none for yet, before a place or a quote needs it.
        self.price_feed: Callable[[list[str]], None] | None = None

    # ----- the Broker protocol -------------------------------------------------------------

    def place_gtt(self, request: GttRequest) -> str:
        validate_request(request)
        self._feed_missing([request.instrument_key])

        def place(state: StateWriter, now: datetime) -> str:
            names = state.instrument(request.instrument_key)
            quote = self._quotes.get(request.instrument_key)
            if quote is None:
                raise NoPriceYet(request.instrument_key, names)
            gtt_id = self._next_gtt_id(now)
            self._engine.place(gtt_id, request, ltp=quote.last_price, at=now,
                               trading_symbol=names.trading_symbol if names else "")
            return gtt_id

        return self._write(place)

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        gtt_id = _check_id(gtt_id)
        validate_request(request)

        def modify(state: StateWriter, now: datetime) -> str:
            gtt = self._engine.live_gtt(gtt_id)
            quote = self._quotes.get(gtt.instrument_key)
            if quote is None:  # cannot happen for a GTT placed here, but a copied database might
                raise NoPriceYet(gtt.instrument_key, state.instrument(gtt.instrument_key))
            self._engine.modify(gtt_id, request, ltp=quote.last_price, at=now)
            return gtt_id

        return self._write(modify)

    def cancel_gtt(self, gtt_id: str) -> str:
        gtt_id = _check_id(gtt_id)

        def cancel(_state: StateWriter, now: datetime) -> str:
            self._engine.cancel(gtt_id, now)
            return gtt_id

        return self._write(cancel)

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        gtt_id = _check_id(gtt_id)

        def find() -> BrokerGtt | None:
            gtt = self._engine.get(gtt_id)
            return None if gtt is None else gtt.to_broker()

        return self._read(find)

    def list_gtts(self) -> list[BrokerGtt]:
        def every() -> list[BrokerGtt]:
            gtts = sorted(self._engine.gtts(), key=lambda gtt: (gtt.created_at, gtt.gtt_id))
            return [gtt.to_broker() for gtt in gtts]

        return self._read(every)

    def hold_order_slots(self, calls: int, within: float | None) -> SlotHold:
        return unpaced()  # the sandbox takes every call at once: nothing to pace

    def quotes(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        self._feed_missing(instrument_keys)
        return self._read(lambda: self._quotes.quotes(instrument_keys))

    def _feed_missing(self, keys: Sequence[str]) -> None:
        if self.price_feed is None:
            return
        missing = self._read(lambda: [key for key in keys if self._quotes.get(key) is None])
        if missing:
            self.price_feed(missing)

    # ----- the sandbox's own ---------------------------------------------------------------

    def apply_ticks(self, ticks: Iterable[Tick]) -> list[FiredEvent]:
        """Apply price updates in order; returns every fill they caused, in firing order."""
        checked = [check_tick(tick) for tick in ticks]
        if not checked:
            return []

        def apply(_state: StateWriter, now: datetime) -> list[FiredEvent]:
            fired: list[FiredEvent] = []
            engine, quotes, desk = self._engine, self._quotes, self._desk
            desk.name([tick.instrument_key for tick in checked])
            for tick in checked:
                at = tick.at or now
                if engine.expiry_due(at):
                    self._note_expired(engine.expire(at))
                quotes.update(tick.instrument_key, tick.ltp, tick.open, at)
                desk.price(tick.instrument_key, tick.ltp, at)  # open orders this price reaches fill first
                events = engine.tick(tick.instrument_key, tick.ltp, at)
                desk.fired(events)
                fired.extend(events)
            return fired

        return self._write(apply)

    def take_expired(self) -> list[str]:
        with self._lock:
            expired, self._expired = self._expired, []
        return expired

    def _note_expired(self, gtts) -> None:
        self._expired.extend(gtt.gtt_id for gtt in gtts)

    def fills(self, gtt_id: str | None = None) -> list[Fill]:
        """Fired rules' child orders, oldest first (of one GTT when `gtt_id` is given)."""
        return self._storage.fills(gtt_id)

    # ----- the paper account (the PaperAccount protocol; brokers/sandbox/paper.py) ----------

    def paper_orders(self) -> list[PaperOrder]:
        return self._storage.paper_orders()

    def paper_trades(self) -> list[PaperTrade]:
        return self._storage.paper_trades()

    def paper_positions(self) -> list[Position]:
        return self._storage.paper_positions()

    def cancel_paper_order(self, order_id: str) -> tuple[PaperOrder | None, bool]:
        """Cancel an open paper order (PaperDesk.cancel): the order as it is now, and whether this
        call cancelled it. In one write transaction, so a price that would fill it either came
        first (it is complete) or never fills it."""
        return self._write(lambda _state, now: self._desk.cancel(order_id, now))

    def order_fill(self, order_id: str) -> OrderFill | None:
        """A fired rule's paper order, as a broker's order details would say it."""
        order = next((o for o in self._storage.paper_orders() if o.order_id == order_id), None)
        if order is None:
            return None
        status = {"complete": "COMPLETE", "open": "OPEN", "cancelled": "CANCELLED"}.get(order.status, order.status)
        if order.day_over(self._clock()):
            status = "CANCELLED"
        message = None
        if status == "CANCELLED":
            # One cancelled by hand was cancelled on its own day; the day's end cancels it later.
            by_hand = order.status == "cancelled" and not order.day_over_at(order.updated_at)
            message = "cancelled by hand (cancelorder)" if by_hand else "a DAY order: its day ended"
        return OrderFill(status=status, filled_quantity=order.quantity if status == "COMPLETE" else 0,
                         average_price=order.average_price, message=message)

    def watched_instruments(self) -> list[str]:
        """What needs live prices: the instruments of live GTTs, open orders and open positions."""
        live = self._read(self._engine.live_instruments)
        return sorted(set(live) | self._storage.paper_keys())

    # ----- transactions --------------------------------------------------------------------

    def _ensure_meta(self) -> None:
        if not self._meta_ensured:
            self._storage.ensure_meta()
            self._meta_ensured = True

    def _write(self, operation: Callable[[StateWriter, datetime], T]) -> T:
        """Run `operation` in one write transaction with memory caught up, then persist what it
        (and any expiry) changed. An InputRejected from the operation is raised after the
        commit: operations refuse before changing anything, but expiries must still be saved."""
        with self._lock:
            self._ensure_meta()
            for attempt in (1, 2):
                refused: InputRejected | None = None
                try:
                    with self._storage.writing() as state:
                        meta = state.claim()
                        self._catch_up(state, meta.generation - 1)
                        self._meta = meta
                        now = self._clock()
                        cached = self._open_cache
                        self._open_cache = None  # until this write commits
                        known = cached[1] if cached is not None and cached[0] == meta.generation - 1 else None
                        self._desk = PaperDesk(state, self._names, now, open_orders=known)
                        self._note_expired(self._engine.expire(now))
                        try:
                            result = operation(state, now)
                        except InputRejected as exc:
                            refused, result = exc, None
                        self._persist(state, meta)
                        open_now = self._desk.open_now()
                    self._seen = meta.generation
                    self._open_cache = (meta.generation, open_now)
                except Conflict:
                    self._forget()
                    if attempt == 2:
                        raise
                    log.warning("sandbox state changed under this process; reloaded, retrying once")
                    continue
                except BaseException:
                    self._forget()  # memory may be ahead of the database now
                    raise
                finally:
                    self._meta = None
                    self._desk = None
                if refused is not None:
                    raise refused
                return result
        raise AssertionError("unreachable")

    def _read(self, answer: Callable[[], T]) -> T:
        with self._lock:
            self._catch_up_for_read()
            if self._engine.expiry_due(self._clock()):
                return self._write(lambda _state, _now: answer())
            return answer()

    def _persist(self, state: StateWriter, meta: Meta) -> None:
        changes = self._engine.take_changes()
        self._desk.fired(changes.fires)  # fires outside a tick (an IMMEDIATE entry filled at once)
        self._desk.save()
        gtts = {}
        for gtt_id in changes.placed | changes.replaced | changes.touched.keys():
            gtt = self._engine.get(gtt_id)
            if gtt is not None:
                gtts[gtt_id] = gtt
        state.save_changes(changes, gtts, meta.generation)
        if self._quotes.changed:
            changed, prices_only = self._quotes.take_changed()
            state.save_quotes(changed, self._stored_quotes, meta.generation, prices_only=prices_only)
        state.save_counters(meta)

    def _forget(self) -> None:
        self._seen = None
        self._engine.take_changes()
        self._quotes.discard_changes()

    def _catch_up(self, state: StateReader, committed: int) -> None:
        """Bring memory up to the database: everything when `_seen` is None, else the GTTs and
        quotes other processes changed after `_seen` (up to generation `committed`)."""
        if self._seen is None:
            self._engine = TriggerEngine(self._next_order_id)
            self._quotes = QuoteBook()
            self._stored_quotes = set()
            since = None
        elif committed > self._seen:
            since = self._seen
        else:
            return
        for gtt in state.load_gtts(since):
            self._engine.load(gtt)
        for key, quote in state.load_quotes(since):
            self._quotes.put(key, quote)
            self._stored_quotes.add(key)
        self._engine.take_changes()
        self._seen = committed

    def _catch_up_for_read(self) -> None:
        self._ensure_meta()
        with self._storage.reading() as state:
            generation = state.generation()
            if self._seen is None or generation > self._seen:
                self._catch_up(state, generation)

    # ----- ids -----------------------------------------------------------------------------

    def _next_gtt_id(self, now: datetime) -> str:
        self._meta.gtt_seq += 1
        return f"GTT-S{now.astimezone(IST):%y%m%d}{self._meta.gtt_seq:08d}"

    def _next_order_id(self, at: datetime) -> str:
        # Only called inside _write, where the counters are claimed.
        self._meta.order_seq += 1
        return f"{at.astimezone(IST):%y%m%d}{self._meta.order_seq:09d}"
