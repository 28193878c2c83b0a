"""The fill of a fired GTT leg (issue 27): once a leg's order has an order id, what became of it
at the broker (Upstox's order details, Kite's order history, the sandbox's paper order): status,
filled quantity, average price, rejection reason.

- When the watcher records a fire, the fired leg's order is looked up once, before the change's
  unit of work (a broker call never runs inside one), and the answer goes into the "triggered"
  message ("bought 3 IDEA at 9.70") and into `order_fills`, in the change's own transaction.
- An order still open then is looked up again by the lease holder's pass, less and less often
  (domain/fill.py `next_check`), until it is final; then the trader is told once (`order_done`).
- gttorderstatus and the page read the stored fill; an unfinished one is asked about again.

Never a poll of every order. A look-up that fails leaves the leg as it was (the status answer,
the message and the pass never fail for it).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from openalgo_gtt.brokers.base import Broker, OrderFillReader
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.book import ROLE
from openalgo_gtt.domain.clock import Clock
from openalgo_gtt.domain.fill import LegFill, describe, fill_json, unknown_fill
from openalgo_gtt.domain.model import BrokerGtt, EventKind, OrderFill
from openalgo_gtt.domain.notifications import Event, trigger_event
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.store.unit_of_work import Store

log = logging.getLogger(__name__)

# Broker look-ups one watcher pass may make for fires, and for follow-ups (each is a paced call):
# a burst of fires must not hold the pass's record (and its messages) for long; the legs left
# unlooked are followed up like open orders.
FIRES_PER_PASS = 20
FOLLOW_UPS_PER_PASS = 10
SINGLE = "single"  # the leg name of a GTT with one rule (a SINGLE, or one leg of an OCO pair)


class OrderFills:
    def __init__(self, broker: Broker, store: Store, notifications: Notifications, clock: Clock):
        self._broker = broker
        self._store = store
        self._notifications = notifications
        self._clock = clock

    def look_up(self, order_id: str) -> OrderFill | None:
        """The broker's answer for one order; None when it cannot say (or the look-up failed)."""
        if not isinstance(self._broker, OrderFillReader):
            return None
        try:
            return self._broker.order_fill(order_id)
        except BrokerError as exc:
            log.info("the fill of order %s could not be looked up: %s", order_id, exc)
            return None

    # -- a fire, as the watcher records it ----------------------------------------------------

    def with_fills(self, events: list[Event], budget: list[int]) -> tuple[list[Event], list[LegFill]]:
        """`events`, each "triggered" one with its order's fill when the broker could say it, and
        the fired legs to keep following. `budget` ([look-ups left]) is shared across a pass."""
        now = self._clock.now()
        told, legs = [], []
        for event in events:
            if event.kind != EventKind.TRIGGERED:
                told.append(event)
                continue
            fill = None
            if event.order_id and budget[0] > 0:
                budget[0] -= 1
                fill = self.look_up(event.order_id)
            legs.append(LegFill(event.broker_id or event.trigger_id or "", event.leg or SINGLE, event.trigger_id or "",
                                event.order_id, event.action, event.quantity, fill or unknown_fill(),
                                checks=0 if fill is None else 1, checked_at=now, fired_at=now))
            told.append(event if fill is None else replace(event, extra={**event.extra, "fill": fill_json(fill)}))
        return told, legs

    # -- following an order that was still open -----------------------------------------------

    def follow_up(self) -> int:
        """Look up the open orders due again (the lease holder's pass); how many were looked up."""
        due = self._store.fills.due(self._clock.now(), FOLLOW_UPS_PER_PASS)
        for leg in due:
            order_id = leg.order_id or self._order_id_of(leg)
            fill = self.look_up(order_id) if order_id else None
            self._advance(replace(leg, order_id=order_id), fill)
        return len(due)

    def _order_id_of(self, leg: LegFill) -> str | None:
        """A fired rule's order id, once the broker lists it (it may list the fire first)."""
        try:
            gtt: BrokerGtt | None = self._broker.get_gtt(leg.broker_id)
        except BrokerError:
            return None
        rules = gtt.rules if gtt is not None else []
        rule = rules[0] if len(rules) == 1 else next((r for r in rules if ROLE.get(r.strategy) == leg.leg), None)
        return rule.order_id if rule is not None else None

    def _advance(self, leg: LegFill, fill: OrderFill | None) -> LegFill:
        """Keep what the broker now says of `leg`'s order; once it is final, tell the trader (the
        "triggered" message said it was open), in the same unit of work."""
        now = self._clock.now()
        moved = replace(leg, fill=fill or leg.fill, checks=leg.checks + 1, checked_at=now)
        with self._store.unit_of_work() as uow:
            uow.save_fill(moved)
            if moved.final:
                self._notifications.emit(uow, self._order_done(moved, now))
        return moved

    def _order_done(self, leg: LegFill, now: datetime) -> Event:
        record = self._store.orders.get(leg.trigger_id)
        base = trigger_event(EventKind.ORDER_DONE, now, record) if record is not None else \
            Event(kind=EventKind.ORDER_DONE, at=now, trigger_id=leg.trigger_id)
        return replace(base, action=leg.action or base.action, quantity=leg.quantity or base.quantity, triggers=(),
                       direction=None, leg=None if leg.leg == SINGLE else leg.leg, broker_id=leg.broker_id,
                       order_id=leg.order_id, extra={"fill": fill_json(leg.fill)})

    # -- gttorderstatus and the page ----------------------------------------------------------

    def annotate(self, entry: dict, fresh_since: datetime | None = None) -> dict:
        """`entry` (a gttorderstatus entry) with `fill` on every leg whose order has an id: the
        stored fill when final (or looked up since `fresh_since`: by this very request, as it
        recorded the fire), else asked of the broker now, and kept as a follow-up would be."""
        stored = {leg.order_id: leg for legs in self._store.fills.of_triggers(
            [entry["trigger_id"]] + ([entry["pair_trigger_id"]] if entry.get("pair_trigger_id") else [])).values()
            for leg in legs if leg.order_id}
        legs = []
        for leg in entry.get("legs") or []:
            order_id = leg.get("order_id")
            if order_id:
                kept = stored.get(str(order_id))
                fresh = kept is not None and (kept.final or kept.checks and fresh_since is not None
                                              and kept.checked_at >= fresh_since)
                fill = kept.fill if fresh else self.look_up(str(order_id))
                if kept is not None and not fresh and fill is not None:
                    self._advance(kept, fill)
                fill = fill or (kept.fill if kept is not None else None)
                leg = {**leg, "fill": None if fill is None else api_fill(fill)}
            legs.append(leg)
        return {**entry, "legs": legs} if legs else entry

    def lines(self, entries: list[dict]) -> dict[str, str]:
        """Each fired trigger's fills in a trader's words, by trigger id (the page's rows), from
        the store alone: "bought 3 IDEA at 9.70"."""
        symbols = {entry["trigger_id"]: entry.get("symbol") for entry in entries if entry.get("status") != "active"}
        stored = self._store.fills.of_triggers(list(symbols))
        return {trigger_id: "; ".join(describe(leg.fill, leg.action, symbols.get(trigger_id), leg.quantity)
                                      for leg in sorted(legs, key=lambda leg: leg.fired_at))
                for trigger_id, legs in stored.items()}


def api_fill(fill: OrderFill) -> dict:
    return {"status": fill.status, "filled_quantity": fill.filled_quantity,
            "average_price": fill.average_price,
            "message": fill.message}
