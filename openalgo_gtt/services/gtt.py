"""The GTT use cases after a place: modify, cancel, one trigger's status, and the order book.

Each takes plain values, finds the trigger in the gateway's record (or at the broker, for a GTT
placed elsewhere), talks to the broker through the `Broker` interface and records what changed.
Errors are raised as domain or broker exceptions; services/answers.py words them.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, InputRejected
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.errors import GttNotFound
from openalgo_gtt.domain.gtt import BRACKET, check_modify_allowed, last_change
from openalgo_gtt.domain.model import ENTRY, MULTIPLE, NATIVE_OCO, BrokerGtt, EventKind, TriggerKind, TriggerStatus
from openalgo_gtt.domain.notifications import trigger_event
from openalgo_gtt.domain.oco import OcoPlan
from openalgo_gtt.domain.records import RecordedTrigger
from openalgo_gtt.services.answers import placed_answer
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.services.exactly_once import ExactlyOnce
from openalgo_gtt.services.in_flight import InFlight
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.order_book import BookView, OrderBook, gtt_entry, pair_entry, recorded_entry
from openalgo_gtt.services.place import Placed, jsonable
from openalgo_gtt.services.staged_bracket import StagedBrackets
from openalgo_gtt.services.planner import Order, Planner
from openalgo_gtt.services.watcher import GttWatcher
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.unit_of_work import Store
from openalgo_gtt.store.instruments import InstrumentIndex

log = logging.getLogger(__name__)


class GttService:
    def __init__(self, broker: Broker, instruments: InstrumentIndex, orders: GttOrders, planner: Planner,
                 in_flight: InFlight, exactly_once: ExactlyOnce, *, store: Store | None = None,
                 watcher: GttWatcher | None = None, notifications: Notifications | None = None,
                 staged: StagedBrackets | None = None):
        self.broker = broker
        self.staged = staged  # brackets the gateway stages (Kite): their status shows both stages
        self.store = store  # with `notifications`: a change and its event are one transaction
        # The status call records what it reads through the watcher (so a change it sees first
        # still gives its events), and lists the trigger's events.
        self.watcher = watcher
        self.notifications = notifications
        self.exactly_once = exactly_once
        self.instruments = instruments
        self.orders = orders
        self.planner = planner
        self.in_flight = in_flight  # answered places not yet recorded: follow-ups wait for the record
        self.order_book = OrderBook(broker, instruments, orders)

    # -- the use cases as the API calls them: at most once per key -------------------------

    def modify_once(self, ctx: RequestContext, trigger_id: str, order: Order, body: dict,
                    idempotency_key: object) -> tuple[dict, int]:
        key = self.exactly_once.key(ctx, "modify", body, idempotency_key, dedupe=False)
        return self.exactly_once.run(ctx, key, lambda: placed_answer(
            self.modify(trigger_id, order, request_id=ctx.request_id)))

    def cancel_once(self, ctx: RequestContext, trigger_id: str, body: dict,
                    idempotency_key: object) -> tuple[dict, int]:
        key = self.exactly_once.key(ctx, "cancel", body, idempotency_key, dedupe=False)
        return self.exactly_once.run(ctx, key, lambda: {"status": "success", "trigger_id": self.cancel(trigger_id)})

    # -- modify -----------------------------------------------------------------------------

    def _existing(self, trigger_id: str) -> tuple[RecordedTrigger | None, BrokerGtt | None]:
        """The gateway's record of a trigger, or the broker's GTT when it was placed elsewhere."""
        self.in_flight.wait_for(trigger_id)
        recorded = self.orders.get(trigger_id)
        if recorded is not None:
            return recorded, None
        found = self.broker.get_gtt(trigger_id)
        if found is None:
            raise GttNotFound(trigger_id)
        return None, found

    def modify(self, trigger_id: str, order: Order, *, request_id: str) -> Placed:
        recorded, at_broker = self._existing(trigger_id)
        instrument, plan = self.planner.plan(order)
        existing = recorded if recorded is not None else {
            "instrument_key": at_broker.instrument_key,
            # A native OCO (Kite's two-leg) has no ENTRY: its legs are on the caller's side.
            "action": next((r.transaction_type for r in at_broker.rules
                            if r.strategy == ENTRY or at_broker.type == NATIVE_OCO), None),
            "product": at_broker.product,
            "trigger_type": BRACKET if at_broker.type == MULTIPLE else at_broker.type,
        }
        check_modify_allowed(existing, order.intent, instrument)
        if isinstance(plan, OcoPlan):
            lower_id, upper_id = recorded.broker_ids
            self.broker.modify_gtt(lower_id, plan.lower.request)
            try:
                self.broker.modify_gtt(upper_id, plan.upper.request)
            except BrokerError as exc:
                exc.message += (f"; the stop-loss leg {lower_id} was already changed to "
                                f"{plan.lower.prices['entry']}: send the modify again or cancel")
                self.orders.replaced(trigger_id, quantity=plan.lower.request.quantity,
                                     legs=jsonable([plan.legs[0], recorded.legs[1]]), request_id=request_id)
                raise
            request, legs = plan.lower.request, plan.legs
        else:
            broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
            self.broker.modify_gtt(broker_id, plan.request)
            request, legs = plan.request, plan.legs
        if recorded is not None:
            now_legs = jsonable(legs)
            event = trigger_event(EventKind.MODIFIED, utcnow(), replace(recorded, quantity=request.quantity,
                                                                         legs=now_legs))
            self._with_event(lambda uow: uow.replaced(trigger_id, quantity=request.quantity, legs=now_legs,
                                                      request_id=request_id), event,
                             lambda: self.orders.replaced(trigger_id, quantity=request.quantity, legs=now_legs,
                                                          request_id=request_id))
        return Placed(trigger_id, plan.prices, plan.warnings)

    def _with_event(self, write, event, write_alone) -> None:
        """Modified and cancelled through the API are events too (kept as history; sent only when
        NOTIFY_EVENTS names them): the change and its event in one transaction."""
        if self.store is None or self.notifications is None:  # built without the outbox
            write_alone()
            return
        with self.store.unit_of_work() as uow:
            write(uow)
            self.notifications.emit(uow, event)

    # -- cancel -----------------------------------------------------------------------------

    def cancel(self, trigger_id: str) -> str:
        recorded, _ = self._existing(trigger_id)
        if recorded is None:
            self._cancel_at_broker(trigger_id)
            return trigger_id
        failures = []
        broker_ids = list(recorded.broker_ids)
        if self.staged is not None and recorded.trigger_type == TriggerKind.BRACKET:
            # A staged bracket whose entry filled lives on as its exit OCO: cancelling the
            # bracket cancels that (the fired entry itself can no longer be deleted).
            broker_ids += self.staged.exit_of(recorded)
        for broker_id in broker_ids:
            try:
                self._cancel_at_broker(broker_id)
            except InputRejected as exc:
                # One OCO leg may have fired (the watcher cancels the other): a leg that is no
                # longer live is not a failure of this cancel.
                if len(broker_ids) == 1:
                    raise
                failures.append(exc)
        if len(failures) == len(broker_ids):
            raise failures[0]
        now = utcnow()
        self._with_event(lambda uow: uow.set_status(trigger_id, TriggerStatus.CANCELLED, cancelled_at=now),
                         trigger_event(EventKind.CANCELLED, now, recorded),
                         lambda: self.orders.set_status(trigger_id, TriggerStatus.CANCELLED, cancelled_at=now))
        return trigger_id

    def _cancel_at_broker(self, broker_id: str) -> None:
        """Cancel one broker GTT. One the broker refuses because it is already cancelled (a retry
        of a cancel whose answer was lost while the broker did it, or a GTT cancelled in the app)
        is cancelled as asked: the refusal stands only for a GTT that fired or is still live."""
        try:
            self.broker.cancel_gtt(broker_id)
        except InputRejected:
            try:
                gtt = self.broker.get_gtt(broker_id)
            except BrokerError:
                gtt = None
            if gtt is None or not gtt.cancelled:
                raise
            log.info("GTT %s was already cancelled at the broker: the cancel is done", broker_id)

    def recorded(self, status: str | None = None) -> list[RecordedTrigger]:
        """The triggers this gateway placed, newest first (optionally in one state). A place
        answered a moment ago is listed: its record is written just after the answer, so the
        listing waits for the ones in flight, as the order book does."""
        self.in_flight.wait_for_all()
        return self.orders.list(status)

    # -- order book and status --------------------------------------------------------------

    def book_view(self, include_all: bool = False) -> BookView:
        """The same book as the API answers it (trigger ids shown, the entries' JSON), shared
        with concurrent callers: read it, never change it."""
        self.in_flight.wait_for_all()
        return self.order_book.view(include_all)

    def status(self, trigger_id: str) -> dict:
        """One trigger in any state, with each leg's broker status, order id and message."""
        self.in_flight.wait_for(trigger_id)
        recorded = self.orders.get(trigger_id)
        if recorded is not None and recorded.is_pair:
            lower, upper = (self.broker.get_gtt(broker_id) for broker_id in recorded.broker_ids)
            legs = self.orders.legs_by_broker_id(recorded.broker_ids).values()
            return pair_entry(self.instruments, recorded, lower, upper, self._last_price(recorded.instrument_key),
                              last_change(*(leg.updated_at for leg in legs)))
        broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
        gtt = self.broker.get_gtt(broker_id)
        if gtt is None:
            if recorded is None:
                raise GttNotFound(trigger_id)
            # Upstox's details call does not return completed GTTs: answer from our record.
            return recorded_entry(recorded, recorded.legs, self._last_price(recorded.instrument_key))
        if recorded is not None and recorded.status == TriggerStatus.ACTIVE and self.watcher is not None:
            self.watcher.settle_seen(trigger_id, [gtt])
        entry = gtt_entry(self.instruments, gtt, self._last_price(gtt.instrument_key), recorded)
        if self.staged is not None and recorded is not None and recorded.trigger_type == TriggerKind.BRACKET:
            entry["stages"] = self.staged.stages(recorded, gtt)
            entry["legs"] += [_staged_leg(leg) for leg in recorded.legs if leg.get("role") in ("target", "stoploss")]
        return entry

    def events(self, trigger_id: str) -> list[dict]:
        """The trigger's notification events, oldest first (its order status lists them)."""
        return self.notifications.history(trigger_id) if self.notifications is not None else []

    def _last_price(self, instrument_key: str) -> Decimal | None:
        """The last price as the order book quotes it (the same cache, the same "unknown")."""
        quote = self.order_book.quotes([instrument_key]).get(instrument_key)
        return quote.last_price if quote is not None else None


def _staged_leg(leg: dict) -> dict:
    """A staged bracket's exit leg as recorded (placed later as one OCO; see `stages`)."""
    prices = {k: Decimal(leg[k]) for k in ("trigger_price", "price") if leg.get(k) is not None}
    return {**leg, **prices, "status": None, "order_id": None, "message": None}
