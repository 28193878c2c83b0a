"""The sandbox's paper desk: fired rules become orders, prices fill them, fills move positions.

One `PaperDesk` lives for one write transaction of the sandbox broker (broker.py `_write`), so
orders, trades and positions change in the same transaction as the fire or tick that caused
them: a restart or a second process never sees a fire without its order, nor a fill without
its trade and position. The rules themselves are domain/paper.py's. Within a batch of ticks the
order is fixed: for each tick, the open orders it reaches fill first, then the rules it fires
become orders (filled at once when that same price allows).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from openalgo_gtt.brokers.base import FiredEvent
from openalgo_gtt.brokers.sandbox.storage import InstrumentNames, StateWriter
from openalgo_gtt.domain.paper import PaperOrder, PaperTrade, Position, apply_trade, order_from_fire
from openalgo_gtt.domain.symbols import SEGMENT_TO_EXCHANGE


class PaperDesk:
    def __init__(self, state: StateWriter, names: dict[str, tuple[str, str]] | None = None,
                 now: datetime | None = None, open_orders: list[PaperOrder] | None = None) -> None:
        self._state = state
        self._now = now  # the transaction's time: an open order whose day ended is cancelled
        # The open orders as the last write of this process left them, when no other write came
        # since (the broker knows): the same rows the store would return, without the query.
        self._known_open = open_orders
        self._open: dict[str, list[PaperOrder]] | None = None  # open orders by instrument, loaded on first use
        self._new: dict[str, PaperOrder] = {}  # orders created in this transaction (their last state)
        self._changed: dict[str, PaperOrder] = {}  # stored orders that changed
        self._trades: list[PaperTrade] = []
        self._seen: set[str] = set()  # fires already turned into orders
        # (symbol, exchange) by instrument key: the broker's cache, shared by its transactions
        self._names: dict[str, tuple[str, str]] = {} if names is None else names

    def _open_orders(self) -> dict[str, list[PaperOrder]]:
        if self._open is None:
            self._open = {}
            known = self._known_open
            # Oldest first, as the store orders them (an order made by a replayed, older price
            # may have been added after younger ones).
            stored = self._state.open_orders() if known is None else sorted(
                known, key=lambda order: (order.created_at, order.order_id))
            for order in stored:
                if self._now is not None and order.day_over(self._now):
                    self._changed[order.order_id] = order.cancelled(self._now)  # a DAY order: never filled
                    continue
                self._open.setdefault(order.instrument_key, []).append(order)
        return self._open

    def price(self, instrument_key: str, ltp: Decimal, at: datetime) -> None:
        """A last price: every open order of the instrument it reaches fills, oldest first."""
        waiting = self._open_orders().get(instrument_key)
        if not waiting:
            return
        still = []
        for order in waiting:
            if order.marketable(ltp):
                self._fill(order, ltp, at)
            else:
                still.append(order)
        self._open[instrument_key] = still

    def fired(self, events: list[FiredEvent]) -> None:
        """Each fired rule's order, filled at once when its firing price allows."""
        for event in events:
            if event.order_id in self._seen:
                continue
            self._seen.add(event.order_id)
            symbol, exchange = self._names_of(event.instrument_key)
            order = order_from_fire(
                order_id=event.order_id, gtt_id=event.gtt_id, strategy=event.strategy,
                instrument_key=event.instrument_key, symbol=symbol, exchange=exchange, product=event.product,
                side=event.transaction_type, quantity=event.quantity, trigger_price=event.price,
                market=event.market, at=event.at)
            self._new[order.order_id] = order
            if order.marketable(event.ltp):
                self._fill(order, event.ltp, event.at)
            else:
                self._open_orders().setdefault(order.instrument_key, []).append(order)

    def cancel(self, order_id: str, at: datetime) -> tuple[PaperOrder | None, bool]:
        """Cancel an open order by hand (OpenAlgo's cancelorder): the order as it is now, and
        whether this call cancelled it. One no longer open (complete, cancelled, or open but its
        day ended, which this very write cancels) is returned as it is, unchanged; None: no such
        order. Its margin is released by the write that saves it, as a fill's is."""
        waiting = self._open_orders()
        if order_id in self._changed:  # its day ended: cancelled by this transaction already
            return self._changed[order_id], False
        for key, orders in waiting.items():
            for order in orders:
                if order.order_id == order_id:
                    waiting[key] = [o for o in orders if o.order_id != order_id]
                    self._changed[order_id] = done = order.cancelled(at)
                    return done, True
        return self._state.paper_order(order_id), False

    def open_now(self) -> list[PaperOrder]:
        """The open orders once this transaction is saved (for the next write of this process)."""
        return [order for orders in self._open_orders().values() for order in orders]

    def _fill(self, order: PaperOrder, ltp: Decimal, at: datetime) -> None:
        done, trade = order.filled(ltp, at)
        if order.order_id in self._new:
            self._new[order.order_id] = done
        else:
            self._changed[order.order_id] = done
        self._trades.append(trade)

    def name(self, instrument_keys: list[str]) -> None:
        """Learn the names of instruments that may fire, in one query for all those not known yet
        (a batch of prices), rather than one query per instrument as each first fires."""
        unnamed = sorted({key for key in instrument_keys if key not in self._names})
        if unnamed:
            found = self._state.instruments(unnamed)
            for key in unnamed:
                self._remember(key, found.get(key))

    def _names_of(self, instrument_key: str) -> tuple[str, str]:
        if instrument_key not in self._names:
            self._remember(instrument_key, self._state.instrument(instrument_key))
        return self._names[instrument_key]

    def _remember(self, instrument_key: str, names: InstrumentNames | None) -> None:
        if names is not None:
            self._names[instrument_key] = (names.symbol, names.exchange)
        elif "|" in instrument_key:  # not in the instrument master: the key is the only name there is
            segment, _, ident = instrument_key.partition("|")
            self._names[instrument_key] = (ident, SEGMENT_TO_EXCHANGE.get(segment, segment))
        else:  # Kite's EXCHANGE:TRADINGSYMBOL
            exchange, _, symbol = instrument_key.partition(":")
            self._names[instrument_key] = (symbol, exchange)

    def save(self) -> None:
        """Write what changed: orders, trades, and the positions the trades moved."""
        self._open_orders()  # an open order whose day ended is cancelled by any write, not only a tick
        if not (self._new or self._changed or self._trades):
            return
        positions: dict[tuple[str, str], Position] = {}
        if self._trades:
            pairs = sorted({(trade.instrument_key, trade.product) for trade in self._trades})
            stored = self._state.positions(pairs)
            for trade in self._trades:
                pair = (trade.instrument_key, trade.product)
                position = positions.get(pair) or stored.get(pair) or Position(
                    instrument_key=trade.instrument_key, product=trade.product, symbol=trade.symbol,
                    exchange=trade.exchange)
                positions[pair] = apply_trade(position, trade)
            self._state.save_positions([positions[pair] for pair in pairs], stored=set(stored))
        self._state.save_paper(list(self._new.values()), list(self._changed.values()), self._trades)
