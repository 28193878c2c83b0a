"""The fill of a fired GTT leg (issue 27): once a leg's order has an order id, what became of it
at the broker (Upstox's order details, Kite's order history, the sandbox's paper order): status,
filled quantity, average price, rejection reason. gttorderstatus shows it on each leg.

Looked up when a trigger's status is asked for, once per order: a final answer (complete,
rejected, cancelled) is kept and never asked again; an open order is asked again on a later
status call. Never a poll of every order. A look-up that fails leaves the leg without a fill
(the status answer itself never fails for it).
"""
from __future__ import annotations

import logging
import threading

from openalgo_gtt.brokers.base import Broker, OrderFillReader
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.model import OrderFill

log = logging.getLogger(__name__)

MAX_KEPT = 10_000  # final fills kept in memory (each asked for once per process)


class OrderFills:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._final: dict[str, OrderFill] = {}
        self._lock = threading.Lock()

    def fill(self, order_id: str) -> OrderFill | None:
        with self._lock:
            kept = self._final.get(order_id)
        if kept is not None or not isinstance(self._broker, OrderFillReader):
            return kept
        try:
            found = self._broker.order_fill(order_id)
        except BrokerError as exc:
            log.info("the fill of order %s could not be looked up: %s", order_id, exc)
            return None
        if found is not None and found.final:
            with self._lock:
                if len(self._final) >= MAX_KEPT:
                    self._final.clear()
                self._final[order_id] = found
        return found

    def annotate(self, entry: dict) -> dict:
        """`entry` (a gttorderstatus entry) with `fill` on every leg whose order has an id."""
        legs = []
        for leg in entry.get("legs") or []:
            order_id = leg.get("order_id")
            if order_id:
                fill = self.fill(str(order_id))
                leg = {**leg, "fill": None if fill is None else {
                    "status": fill.status, "filled_quantity": fill.filled_quantity,
                    "average_price": fill.average_price, "message": fill.message}}
            legs.append(leg)
        return {**entry, "legs": legs} if legs else entry
