"""The GTT use cases: place, modify, cancel, the order book and one trigger's status.

Each is one method that takes plain values (no Flask), resolves the instrument, plans the
broker request with the domain rules, talks to the broker through the `Broker` interface and
records what it did. Errors are raised as domain or broker exceptions; the API layer turns
them into HTTP answers.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Protocol

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.domain.model import (
    ENTRY, MULTIPLE, SCHEDULED, SINGLE, BrokerGtt, GttRequest, GttRule, TriggerKind, TriggerStatus,
)
from openalgo_gtt.brokers.errors import BrokerError, InputRejected, PacingTimeout, RateLimited
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.gtt import (
    BRACKET,
    OCO,
    PlaceIntent,
    Plan,
    check_modify_allowed,
    gtt_status,
    plan_bracket,
    plan_single,
)
from openalgo_gtt.domain.oco import LOWER, UPPER, OcoPlan, plan_oco
from openalgo_gtt.domain.strategy import BracketPcts
from openalgo_gtt.domain.symbols import InstrumentInfo
from openalgo_gtt.services.in_flight import InFlight
from openalgo_gtt.services.order_book import BookView, OrderBook, gtt_entry, pair_entry, recorded_entry
from openalgo_gtt.services.trade_limit import DailyTradeLimit, Reservation
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.instruments import InstrumentIndex
from openalgo_gtt.store.models import GttOrder

log = logging.getLogger(__name__)

BOOK_TRIGGER_TYPE = {SINGLE: TriggerKind.SINGLE, BRACKET: TriggerKind.BRACKET, OCO: TriggerKind.TWO_LEG}
# How far back a GTT's creation time may be from our clock and still be "ours" (clock skew).
FIND_SLACK = timedelta(seconds=120)


class GttNotFound(LookupError):
    def __init__(self, trigger_id: str):
        super().__init__(f"GTT trigger {trigger_id!r} not found")
        self.trigger_id = trigger_id


@dataclass(frozen=True)
class Order:
    """A place or modify request: the instrument as the caller named it, and the intent."""

    symbol: str
    exchange: str
    intent: PlaceIntent
    strategy: str | None = None
    force: bool = False


@dataclass(frozen=True)
class Placed:
    trigger_id: str
    prices: dict[str, Decimal]
    warnings: tuple[str, ...] = ()
    trade_count: int | None = None


class Attempt(Protocol):
    """The exactly-once record of this place (see api/exactly_once.py)."""

    retry: bool  # an earlier attempt of the same request ended without a clear answer
    plan: dict | None  # what that attempt sent (the intent written before its broker call)
    reserved_day: date | None  # the trade it reserved and did not settle
    attempt_started_at: datetime | None

    def save_intent(self, conn: Any, plan: dict, reserved_day: date | None, started_at: datetime) -> None:
        """Record the intent in `conn`, the transaction that reserves the trade (it may raise
        to refuse, which rolls that transaction back)."""

    def intent_rolled_back(self) -> None:
        """The transaction `save_intent` ran in did not commit."""

    def answering(self, placed: "Placed") -> None:
        """The broker has the GTT: fix the answer the caller is about to get."""

    def after_answer(self, work: Callable[[], None]) -> None:
        """Run `work` once the caller has the answer."""

    def close(self, conn: Any) -> None:
        """Record the answer in `conn`, the transaction that records the GTT."""

    def close_alone(self) -> None:
        """Record the answer when that transaction failed (never raises)."""


def request_to_json(request: GttRequest) -> dict:
    return {
        "type": request.type, "instrument_key": request.instrument_key,
        "transaction_type": request.transaction_type, "product": request.product, "quantity": request.quantity,
        "rules": [{"strategy": r.strategy, "trigger_type": r.trigger_type, "trigger_price": str(r.trigger_price),
                   "trailing_gap": None if r.trailing_gap is None else str(r.trailing_gap),
                   "market_protection": r.market_protection} for r in request.rules],
    }


def request_from_json(data: dict) -> GttRequest:
    rules = tuple(GttRule(r["strategy"], r["trigger_type"], Decimal(r["trigger_price"]),
                          None if r.get("trailing_gap") is None else Decimal(r["trailing_gap"]),
                          r.get("market_protection")) for r in data["rules"])
    return GttRequest(data["type"], data["instrument_key"], data["transaction_type"], data["product"],
                      int(data["quantity"]), rules)


def jsonable(legs) -> list[dict[str, Any]]:
    """Legs for the JSON column: Decimals as strings keep every paisa exact."""
    return [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in leg.items()} for leg in legs]


def same_request(gtt: BrokerGtt, request: GttRequest) -> bool:
    """Whether a GTT at the broker is the one `request` asked for (instrument, side, quantity,
    product and every rule's strategy, trigger type and price)."""
    if (gtt.instrument_key, gtt.type, gtt.quantity, gtt.product) != (
            request.instrument_key, request.type, request.quantity, request.product):
        return False
    entry = next((r for r in gtt.rules if r.strategy == ENTRY), None)
    if entry is None or entry.transaction_type != request.transaction_type:
        return False
    have = sorted((r.strategy, r.trigger_type, Decimal(r.trigger_price)) for r in gtt.rules)
    want = sorted((r.strategy, r.trigger_type, Decimal(r.trigger_price)) for r in request.rules)
    return have == want


# A broker 429 means nothing was placed: try again while the caller still waits (TradingView
# gives up after 3 seconds).
RATE_LIMIT_RETRY_BUDGET = 2.0
RATE_LIMIT_RETRY_PAUSE = 0.4


class GttService:
    def __init__(self, broker: Broker, instruments: InstrumentIndex, limit: DailyTradeLimit,
                 orders: GttOrders, pcts: BracketPcts, lookup_budget: float = 5.0):
        self.broker = broker
        self.instruments = instruments
        self.limit = limit
        self.orders = orders
        self.pcts = pcts
        # An ambiguous place is looked up at the broker before answering only while this much
        # time has passed since it began; later, the answer is "unknown" and a retry reconciles.
        self.lookup_budget = lookup_budget
        self.order_book = OrderBook(broker, instruments, orders)
        self.in_flight = InFlight()  # answered, not yet recorded: follow-ups wait for the record

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, order: Order) -> tuple[InstrumentInfo, Plan | OcoPlan]:
        instrument = self.instruments.lookup(order.symbol, order.exchange)
        intent = order.intent
        if intent.trigger_type == OCO:
            return instrument, plan_oco(intent, instrument)
        if intent.trigger_type == BRACKET:
            quote = self.broker.quotes([instrument.instrument_key]).get(instrument.instrument_key)
            open_price = quote.open if quote else None
            last_price = quote.last_price if quote else None
            return instrument, plan_bracket(intent, instrument, open_price, last_price, self.pcts)
        return instrument, plan_single(intent, instrument)

    # -- place ------------------------------------------------------------------------------

    def place(self, order: Order, *, request_id: str, api_key_name: str | None,
              attempt: Attempt | None = None) -> Placed:
        instrument, plan = self._plan(order)
        if attempt is not None and attempt.retry and attempt.plan:
            # An earlier attempt's outcome is unknown: look for it before placing anything.
            recovered = self.recover(attempt.plan, attempt.attempt_started_at)
            if recovered is not None:
                return recovered
            if attempt.reserved_day is not None:
                self.limit.release(Reservation(attempt.reserved_day, 0))
        started = utcnow()
        intent = self._intent(order, instrument, plan, request_id, api_key_name)
        write_intent = None if attempt is None else (
            lambda conn, day: attempt.save_intent(conn, intent, day, started))
        try:
            reservation = self.limit.reserve(force=order.force, also=write_intent)
        except BaseException:
            if attempt is not None:
                attempt.intent_rolled_back()
            raise
        if isinstance(plan, OcoPlan):
            legs = self._place_pair(plan, reservation, started)
        else:
            gtt_id = self._place_one(plan.request, reservation, started)
            legs = [(gtt_id, intent["roles"][0], SCHEDULED)]
        placed = Placed(self._trigger_id(intent, legs), plan.prices, plan.warnings, reservation.count)
        if attempt is None:
            if self._record(intent, legs):
                return placed
            return replace(placed, warnings=(*placed.warnings, "placed at the broker, but the gateway could not "
                                                               "record it locally"))
        # The caller hears first: the intent written before the broker call already makes the
        # place recoverable (a crash from here on is settled by the watcher), so the GTT, the
        # answer kept for duplicates and the audit row are committed just after the answer.
        attempt.answering(placed)
        self.in_flight.hold(placed.trigger_id)
        attempt.after_answer(lambda: self._record_answered(intent, legs, attempt, placed.trigger_id))
        return placed

    def _record_answered(self, intent: dict, legs: list[tuple[str, str, str]], attempt: Attempt,
                         trigger_id: str) -> None:
        """The GTT, the answer and the audit row in one transaction; should that fail, each on
        its own (the GTT first: it is what a cancel or the order book needs)."""
        try:
            if not self._record(intent, legs, also=attempt.close):
                self._record(intent, legs)
                attempt.close_alone()
        finally:
            self.in_flight.release(trigger_id)

    @staticmethod
    def _intent(order: Order, instrument: InstrumentInfo, plan: Plan | OcoPlan, request_id: str,
                api_key_name: str | None) -> dict:
        """Everything needed to send, find again and record this place: written before the
        broker call, so a crash or a lost answer can be reconciled."""
        is_oco = isinstance(plan, OcoPlan)
        requests = [plan.lower.request, plan.upper.request] if is_oco else [plan.request]
        role = {OCO: None, BRACKET: "bracket"}.get(order.intent.trigger_type, "single")
        return {
            "requests": [request_to_json(r) for r in requests],
            "roles": [LOWER, UPPER] if is_oco else [role],
            "prices": {k: str(v) for k, v in plan.prices.items()},
            "order": {
                "instrument_key": instrument.instrument_key, "symbol": instrument.symbol,
                "exchange": instrument.exchange, "trigger_type": BOOK_TRIGGER_TYPE[order.intent.trigger_type],
                "action": requests[0].transaction_type, "product": order.intent.product,
                "quantity": requests[0].quantity, "legs": jsonable(plan.legs), "strategy": order.strategy,
                "request_id": request_id, "api_key_name": api_key_name,
            },
        }

    @staticmethod
    def _trigger_id(intent: dict, legs: list[tuple[str, str, str]]) -> str:
        first = legs[0][0]
        return "OCO-" + first.removeprefix("GTT-") if intent["order"]["trigger_type"] == TriggerKind.TWO_LEG else first

    def _record(self, intent: dict, legs: list[tuple[str, str, str]], also: Callable[[Any], None] | None = None) -> bool:
        trigger_id = self._trigger_id(intent, legs)
        try:
            self.orders.add(dict(trigger_id=trigger_id, broker_ids=[leg[0] for leg in legs], status=TriggerStatus.ACTIVE,
                                 placed_at=utcnow(), **intent["order"]), legs, also=also)
            return True
        except Exception:  # noqa: BLE001 - the GTT exists at the broker: the caller must hear success
            log.exception("trigger %s was placed but could not be recorded locally", trigger_id)
            return False

    def recover(self, intent: dict, since: datetime | None) -> Placed | None:
        """Find an earlier attempt's GTTs at the broker: recorded (and a success) when all are
        there; withdrawn when only part of an OCO is; None when nothing was placed."""
        already = self.orders.by_request_id(intent["order"]["request_id"])
        if already is not None:
            return Placed(already.trigger_id, {k: Decimal(v) for k, v in intent["prices"].items()},
                          ("answered from an earlier attempt of this request",), self.limit.today_count())
        since = since or utcnow() - FIND_SLACK
        found = [self.find_placed(request_from_json(r), since) for r in intent["requests"]]
        if found and all(found):
            legs = [(gtt.gtt_id, role, SCHEDULED) for gtt, role in zip(found, intent["roles"])]
            self._record(intent, legs)
            return Placed(self._trigger_id(intent, legs), {k: Decimal(v) for k, v in intent["prices"].items()},
                          ("found at the broker: an earlier attempt of this request had placed it",),
                          self.limit.today_count())
        for gtt in filter(None, found):  # half an OCO is worse than none
            self._withdraw(gtt.gtt_id)
        return None

    def _send_place(self, request: GttRequest) -> str:
        """One place, retried on a broker 429 (nothing was placed) within the caller's patience."""
        deadline = time.monotonic() + RATE_LIMIT_RETRY_BUDGET
        while True:
            try:
                return self.broker.place_gtt(request)
            except RateLimited as exc:
                if isinstance(exc, PacingTimeout) or time.monotonic() + RATE_LIMIT_RETRY_PAUSE > deadline:
                    raise
                time.sleep(RATE_LIMIT_RETRY_PAUSE)

    def _place_one(self, request: GttRequest, reservation: Reservation, started: datetime) -> str:
        try:
            return self._send_place(request)
        except BrokerError as exc:
            if exc.may_have_reached and (utcnow() - started).total_seconds() < self.lookup_budget:
                # The answer was lost or garbled but there is time to ask what the broker holds.
                try:
                    found = self.find_placed(request, since=started)
                except BrokerError:
                    raise exc from None  # still unknown: the reservation stays for a retry
                if found is not None:
                    log.warning("place answered %s but the GTT %s exists: treated as placed", exc, found.gtt_id)
                    return found.gtt_id
                exc.may_have_reached = False  # looked, and it is not there
            if not exc.may_have_reached:
                self.limit.release(reservation)  # nothing was placed: the trade is not counted
            raise

    def _place_pair(self, plan: OcoPlan, reservation: Reservation, started: datetime) -> list[tuple[str, str, str]]:
        """Both OCO legs, or neither: a failed second leg takes the first one down with it."""
        lower_id = self._place_one(plan.lower.request, reservation, started)
        try:
            upper_id = self._send_place(plan.upper.request)
        except BrokerError as exc:
            undone = self._withdraw(lower_id)
            if exc.may_have_reached:
                stray = self.find_placed(plan.upper.request, since=started)
                undone = undone and (stray is None or self._withdraw(stray.gtt_id))
            if undone:
                self.limit.release(reservation)
                exc.may_have_reached = False
            else:
                exc.message += ("; the stop-loss leg could not be withdrawn: check Upstox's GTT list "
                                f"for {lower_id}")
            raise
        return [(lower_id, LOWER, SCHEDULED), (upper_id, UPPER, SCHEDULED)]

    def _withdraw(self, gtt_id: str) -> bool:
        """Cancel a GTT the gateway just placed; True when it is certainly gone."""
        try:
            self.broker.cancel_gtt(gtt_id)
            return True
        except BrokerError as exc:
            log.error("could not withdraw GTT %s: %s", gtt_id, exc)
            try:
                return self.broker.get_gtt(gtt_id) is None
            except BrokerError:
                return False

    def find_placed(self, request: GttRequest, since: datetime) -> BrokerGtt | None:
        """The broker GTT matching `request` created since `since` that the gateway does not know
        yet: how an answer lost after the broker did the work is found again."""
        candidates = [gtt for gtt in self.broker.list_gtts()
                      if same_request(gtt, request) and (gtt.created_at is None or gtt.created_at >= since - FIND_SLACK)]
        known = self.orders.known_broker_ids([gtt.gtt_id for gtt in candidates])
        fresh = [gtt for gtt in candidates if gtt.gtt_id not in known]
        return max(fresh, key=lambda gtt: gtt.created_at or since, default=None)

    # -- modify -----------------------------------------------------------------------------

    def _existing(self, trigger_id: str) -> tuple[GttOrder | None, BrokerGtt | None]:
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
        instrument, plan = self._plan(order)
        existing = recorded if recorded is not None else {
            "instrument_key": at_broker.instrument_key,
            "action": next((r.transaction_type for r in at_broker.rules if r.strategy == ENTRY), None),
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
            self.orders.replaced(trigger_id, quantity=request.quantity, legs=jsonable(legs), request_id=request_id)
        return Placed(trigger_id, plan.prices, plan.warnings)

    # -- cancel -----------------------------------------------------------------------------

    def cancel(self, trigger_id: str) -> str:
        recorded, _ = self._existing(trigger_id)
        if recorded is None:
            self.broker.cancel_gtt(trigger_id)
            return trigger_id
        failures = []
        for broker_id in recorded.broker_ids:
            try:
                self.broker.cancel_gtt(broker_id)
            except InputRejected as exc:
                # One OCO leg may have fired (the watcher cancels the other): a leg that is no
                # longer live is not a failure of this cancel.
                if len(recorded.broker_ids) == 1:
                    raise
                failures.append(exc)
        if len(failures) == len(recorded.broker_ids):
            raise failures[0]
        self.orders.set_status(trigger_id, TriggerStatus.CANCELLED, cancelled_at=utcnow())
        return trigger_id

    # -- order book and status --------------------------------------------------------------

    def book(self, include_all: bool = False) -> list[dict]:
        """Triggers that can still fire (or every one), as the broker listed them after this call
        began: the caller's own copy."""
        return copy.deepcopy(list(self.book_view(include_all).entries))

    def book_view(self, include_all: bool = False) -> BookView:
        """The same book as the API answers it (trigger ids shown, the entries' JSON), shared
        with concurrent callers: read it, never change it."""
        self.in_flight.wait_for_all()
        return self.order_book.view(include_all)

    def status(self, trigger_id: str) -> dict:
        """One trigger in any state, with each leg's broker status, order id and message."""
        self.in_flight.wait_for(trigger_id)
        recorded = self.orders.get(trigger_id)
        if recorded is not None and recorded.trigger_type == TriggerKind.TWO_LEG:
            lower, upper = (self.broker.get_gtt(broker_id) for broker_id in recorded.broker_ids)
            return pair_entry(self.instruments, recorded, lower, upper, None)
        broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
        gtt = self.broker.get_gtt(broker_id)
        if gtt is None:
            if recorded is None:
                raise GttNotFound(trigger_id)
            # Upstox's details call does not return completed GTTs: answer from our record.
            return recorded_entry(recorded, recorded.legs)
        if recorded is not None:
            self.orders.set_status(trigger_id, gtt_status(gtt), next((r.message for r in gtt.rules if r.message), None))
        return gtt_entry(self.instruments, gtt, None, recorded)
