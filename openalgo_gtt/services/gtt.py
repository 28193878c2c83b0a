"""The GTT use cases: place, modify, cancel, the order book and one trigger's status.

Each is one method that takes plain values (no Flask), resolves the instrument, plans the
broker request with the domain rules, talks to the broker through the `Broker` interface and
records what it did. Errors are raised as domain or broker exceptions; the API layer turns
them into HTTP answers.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from openalgo_gtt.brokers.base import (
    ENTRY,
    MULTIPLE,
    SCHEDULED,
    SINGLE,
    Broker,
    BrokerGtt,
    GttRequest,
    GttRule,
)
from openalgo_gtt.brokers.errors import BrokerError, InputRejected, PacingTimeout, RateLimited
from openalgo_gtt.clock import ist_text, utcnow
from openalgo_gtt.domain.gtt import (
    BRACKET,
    OCO,
    PlaceIntent,
    Plan,
    book_entry,
    check_modify_allowed,
    gtt_status,
    plan_bracket,
    plan_single,
)
from openalgo_gtt.domain.oco import LOWER, UPPER, OcoPlan, leg_state, pair_book_entry, pair_status, plan_oco
from openalgo_gtt.domain.strategy import BracketPcts
from openalgo_gtt.domain.symbols import SEGMENT_TO_EXCHANGE, InstrumentInfo
from openalgo_gtt.services.trade_limit import DailyTradeLimit, Reservation
from openalgo_gtt.store.gtt_orders import ACTIVE, CANCELLED, TWO_LEG, GttOrders
from openalgo_gtt.store.instruments import InstrumentIndex
from openalgo_gtt.store.models import GttOrder

log = logging.getLogger(__name__)

BOOK_TRIGGER_TYPE = {SINGLE: "single", BRACKET: "bracket", OCO: TWO_LEG}
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

    def save_intent(self, plan: dict, reserved_day: date | None, started_at: datetime, conn: Any) -> None:
        """Record the intent in `conn`, the transaction that reserves the trade."""


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


def _leg_from_record(leg: dict) -> dict:
    """A recorded leg (prices kept as exact strings) as the order book shows legs."""
    prices = {k: Decimal(leg[k]) for k in ("trigger_price", "price", "trailing_gap") if leg.get(k) is not None}
    return {**leg, **prices, "status": None, "order_id": None, "message": None}


# A broker 429 means nothing was placed: try again while the caller still waits (TradingView
# gives up after 3 seconds).
RATE_LIMIT_RETRY_BUDGET = 2.0
RATE_LIMIT_RETRY_PAUSE = 0.4
# The order book's last prices may be this old (it shows them for orientation, nothing is
# computed from them).
QUOTE_CACHE_SECONDS = 1.0


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
        self._quote_cache: dict[str, tuple[float, Any]] = {}

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
            lambda conn, reserved: attempt.save_intent(intent, reserved.day, started, conn))
        reservation = self.limit.reserve(force=order.force, also=write_intent)
        if isinstance(plan, OcoPlan):
            legs = self._place_pair(plan, reservation, started)
        else:
            gtt_id = self._place_one(plan.request, reservation, started)
            legs = [(gtt_id, intent["roles"][0], SCHEDULED)]
        warnings = list(plan.warnings)
        if not self._record(intent, legs):
            warnings.append("placed at the broker, but the gateway could not record it locally")
        return Placed(self._trigger_id(intent, legs), plan.prices, tuple(warnings), reservation.count)

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
        return "OCO-" + first.removeprefix("GTT-") if intent["order"]["trigger_type"] == TWO_LEG else first

    def _record(self, intent: dict, legs: list[tuple[str, str, str]]) -> bool:
        trigger_id = self._trigger_id(intent, legs)
        try:
            self.orders.add(GttOrder(trigger_id=trigger_id, broker_ids=[leg[0] for leg in legs], status=ACTIVE,
                                     placed_at=utcnow(), **intent["order"]), legs)
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
        known = self.orders.legs_by_broker_id([gtt.gtt_id for gtt in candidates])
        fresh = [gtt for gtt in candidates if gtt.gtt_id not in known]
        return max(fresh, key=lambda gtt: gtt.created_at or since, default=None)

    # -- modify -----------------------------------------------------------------------------

    def _existing(self, trigger_id: str) -> tuple[GttOrder | None, BrokerGtt | None]:
        """The gateway's record of a trigger, or the broker's GTT when it was placed elsewhere."""
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
        self.orders.set_status(trigger_id, CANCELLED, cancelled_at=utcnow())
        return trigger_id

    # -- order book and status --------------------------------------------------------------

    def _names(self, gtt: BrokerGtt) -> tuple[str, str, bool]:
        """(symbol, exchange, is_derivative) from the master, for GTTs placed elsewhere too."""
        info = self.instruments.by_key(gtt.instrument_key)
        if info is not None:
            return info.symbol, info.exchange, info.is_derivative
        exchange = SEGMENT_TO_EXCHANGE.get(gtt.segment, gtt.segment)
        return gtt.trading_symbol, exchange, gtt.segment.endswith("_FO")

    def _entry(self, gtt: BrokerGtt, last_price: Decimal | None, recorded: GttOrder | None) -> dict:
        symbol, exchange, is_derivative = self._names(gtt)
        record = None
        if recorded is not None:
            record = {
                "trigger_id": recorded.trigger_id if recorded.trigger_type != TWO_LEG else gtt.gtt_id,
                "trigger_type": recorded.trigger_type if recorded.trigger_type != TWO_LEG else "single",
                "product": recorded.product,
                "placed_at": recorded.placed_at,
                "modified_at": recorded.modified_at,
            }
        return book_entry(gtt, symbol=symbol, exchange=exchange, last_price=last_price,
                          is_derivative=is_derivative, recorded=record)

    def _pair_entry(self, recorded: GttOrder, lower: BrokerGtt | None, upper: BrokerGtt | None,
                    last_price: Decimal | None) -> dict:
        sides = []
        for gtt, leg in ((lower, recorded.legs[0]), (upper, recorded.legs[1])):
            sides.append(self._entry(gtt, last_price, recorded) if gtt is not None
                         else self._recorded_entry(recorded, [leg]))
        status = pair_status(leg_state(lower), leg_state(upper))
        if status == "active" and recorded.status != ACTIVE:
            status = recorded.status  # cancelled through the gateway; Upstox may lag a moment
        return pair_book_entry(sides[0], sides[1], trigger_id=recorded.trigger_id, status=status,
                               message=recorded.status_message)

    def book(self, include_all: bool = False) -> list[dict]:
        """Triggers that can still fire (or every one): one list call and one batched quote call."""
        gtts = self.broker.list_gtts()
        by_id = {gtt.gtt_id: gtt for gtt in gtts}
        legs = self.orders.legs_by_broker_id(list(by_id))
        pairs = self.orders.by_trigger_ids(sorted({leg.trigger_id for leg in legs.values() if leg.role in (LOWER, UPPER)}))
        singles = [gtt for gtt in gtts if gtt.gtt_id not in legs or legs[gtt.gtt_id].role not in (LOWER, UPPER)]
        if not include_all:
            singles = [gtt for gtt in singles if gtt.can_fire]
        pair_gtts = {trigger_id: [by_id.get(broker_id) for broker_id in record.broker_ids]
                     for trigger_id, record in pairs.items()}
        if not include_all:
            pair_gtts = {t: pair for t, pair in pair_gtts.items()
                         if pair_status(leg_state(pair[0]), leg_state(pair[1])) == "active" and pairs[t].status == ACTIVE}
        keys = sorted({gtt.instrument_key for gtt in singles} | {pairs[t].instrument_key for t in pair_gtts})
        quotes = self._quotes(keys)
        recorded = self.orders.by_trigger_ids([gtt.gtt_id for gtt in singles])
        entries = [self._entry(gtt, self._last(quotes, gtt.instrument_key), recorded.get(gtt.gtt_id)) for gtt in singles]
        entries += [self._pair_entry(pairs[t], lower, upper, self._last(quotes, pairs[t].instrument_key))
                    for t, (lower, upper) in pair_gtts.items()]
        return sorted(entries, key=lambda entry: entry["created_at"])

    def _quotes(self, keys: list[str]) -> dict:
        """Last prices for the book, from a cache at most QUOTE_CACHE_SECONDS old: a burst of
        book requests costs one quote call, not one each."""
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

    @staticmethod
    def _last(quotes: dict, key: str) -> Decimal | None:
        quote = quotes.get(key)
        return quote.last_price if quote is not None else None

    def status(self, trigger_id: str) -> dict:
        """One trigger in any state, with each leg's broker status, order id and message."""
        recorded = self.orders.get(trigger_id)
        if recorded is not None and recorded.trigger_type == TWO_LEG:
            lower, upper = (self.broker.get_gtt(broker_id) for broker_id in recorded.broker_ids)
            return self._pair_entry(recorded, lower, upper, None)
        broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
        gtt = self.broker.get_gtt(broker_id)
        if gtt is None:
            if recorded is None:
                raise GttNotFound(trigger_id)
            # Upstox's details call does not return completed GTTs: answer from our record.
            return self._recorded_entry(recorded, recorded.legs)
        if recorded is not None:
            self.orders.set_status(trigger_id, gtt_status(gtt), next((r.message for r in gtt.rules if r.message), None))
        return self._entry(gtt, None, recorded)

    @staticmethod
    def _recorded_entry(recorded: GttOrder, legs: list[dict]) -> dict:
        return {
            "trigger_id": recorded.trigger_id,
            "trigger_type": recorded.trigger_type,
            "status": recorded.status,
            "message": recorded.status_message,
            "symbol": recorded.symbol,
            "exchange": recorded.exchange,
            "trigger_prices": sorted(Decimal(leg["trigger_price"]) for leg in legs),
            "last_price": Decimal(0),
            "legs": [_leg_from_record(leg) for leg in legs],
            "created_at": ist_text(recorded.placed_at),
            "updated_at": ist_text(recorded.modified_at),
            "expires_at": "",
        }
