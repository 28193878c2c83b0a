"""The GTT use cases: place, modify, cancel, the order book and one trigger's status.

Each is one method that takes plain values (no Flask), resolves the instrument, plans the
broker request with the domain rules, talks to the broker through the `Broker` interface and
records what it did. Errors are raised as domain or broker exceptions; the API layer turns
them into HTTP answers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openalgo_gtt.brokers.base import MULTIPLE, SINGLE, Broker, BrokerGtt
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.clock import ist_text, utcnow
from openalgo_gtt.domain.gtt import (
    BRACKET,
    OCO,
    PlaceIntent,
    Plan,
    book_entry,
    caller_product,
    check_modify_allowed,
    gtt_status,
    plan_bracket,
    plan_single,
)
from openalgo_gtt.domain.strategy import BracketPcts
from openalgo_gtt.domain.symbols import SEGMENT_TO_EXCHANGE, InstrumentInfo
from openalgo_gtt.services.trade_limit import DailyTradeLimit
from openalgo_gtt.store.gtt_orders import ACTIVE, CANCELLED, GttOrders
from openalgo_gtt.store.instruments import InstrumentIndex
from openalgo_gtt.store.models import GttOrder

log = logging.getLogger(__name__)

BOOK_TRIGGER_TYPE = {SINGLE: "single", BRACKET: "bracket", OCO: "two-leg"}


class GttNotFound(LookupError):
    def __init__(self, trigger_id: str):
        super().__init__(f"GTT trigger {trigger_id!r} not found")
        self.trigger_id = trigger_id


class NotBuiltYet(Exception):
    """A feature the gateway will offer but does not yet (answered with 501)."""


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


def _jsonable_legs(plan: Plan) -> list[dict[str, Any]]:
    """Legs for the JSON column: Decimals as strings keep every paisa exact."""
    return [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in leg.items()} for leg in plan.legs]


class GttService:
    def __init__(self, broker: Broker, instruments: InstrumentIndex, limit: DailyTradeLimit,
                 orders: GttOrders, pcts: BracketPcts):
        self.broker = broker
        self.instruments = instruments
        self.limit = limit
        self.orders = orders
        self.pcts = pcts

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, order: Order) -> tuple[InstrumentInfo, Plan]:
        instrument = self.instruments.lookup(order.symbol, order.exchange)
        intent = order.intent
        if intent.trigger_type == OCO:
            raise NotBuiltYet(
                "OCO (two-leg) GTTs are not available yet: Upstox has no exit-only OCO, and this "
                "gateway will not fake one with an entry that opens a new position"
            )
        if intent.trigger_type == BRACKET:
            quote = self.broker.quotes([instrument.instrument_key]).get(instrument.instrument_key)
            open_price = quote.open if quote else None
            last_price = quote.last_price if quote else None
            return instrument, plan_bracket(intent, instrument, open_price, last_price, self.pcts)
        return instrument, plan_single(intent, instrument)

    # -- place ------------------------------------------------------------------------------

    def place(self, order: Order, *, request_id: str, api_key_name: str | None) -> Placed:
        instrument, plan = self._plan(order)
        reservation = self.limit.reserve(force=order.force)
        try:
            gtt_id = self.broker.place_gtt(plan.request)
        except BrokerError as exc:
            if not exc.may_have_reached:
                self.limit.release(reservation)  # nothing was placed: the trade is not counted
            raise
        warnings = list(plan.warnings)
        try:
            self.orders.add(GttOrder(
                trigger_id=gtt_id,
                broker_ids=[gtt_id],
                instrument_key=instrument.instrument_key,
                symbol=instrument.symbol,
                exchange=instrument.exchange,
                trigger_type=BOOK_TRIGGER_TYPE[order.intent.trigger_type],
                action=plan.request.transaction_type,
                product=order.intent.product,
                quantity=plan.request.quantity,
                legs=_jsonable_legs(plan),
                strategy=order.strategy,
                status=ACTIVE,
                placed_at=utcnow(),
                request_id=request_id,
                api_key_name=api_key_name,
            ))
        except Exception:  # noqa: BLE001 - the GTT exists at the broker: the caller must hear success
            log.exception("GTT %s was placed but could not be recorded locally", gtt_id)
            warnings.append("placed at the broker, but the gateway could not record it locally")
        return Placed(gtt_id, plan.prices, tuple(warnings), reservation.count)

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
        if recorded is not None:
            existing = recorded
        else:
            existing = {
                "instrument_key": at_broker.instrument_key,
                "action": next((r.transaction_type for r in at_broker.rules if r.strategy == "ENTRY"), None),
                "product": at_broker.product,
                "trigger_type": SINGLE if at_broker.type == SINGLE else (BRACKET if at_broker.type == MULTIPLE else at_broker.type),
            }
        check_modify_allowed(existing, order.intent, instrument)
        broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
        self.broker.modify_gtt(broker_id, plan.request)
        if recorded is not None:
            self.orders.replaced(trigger_id, quantity=plan.request.quantity, legs=_jsonable_legs(plan),
                                 request_id=request_id)
        return Placed(trigger_id, plan.prices, plan.warnings)

    # -- cancel -----------------------------------------------------------------------------

    def cancel(self, trigger_id: str) -> str:
        recorded, _ = self._existing(trigger_id)
        broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
        self.broker.cancel_gtt(broker_id)
        if recorded is not None:
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
                "trigger_id": recorded.trigger_id,
                "trigger_type": recorded.trigger_type,
                "product": recorded.product,
                "placed_at": recorded.placed_at,
                "modified_at": recorded.modified_at,
            }
        return book_entry(gtt, symbol=symbol, exchange=exchange, last_price=last_price,
                          is_derivative=is_derivative, recorded=record)

    def book(self, include_all: bool = False) -> list[dict]:
        """Triggers that can still fire (or every one): one list call and one batched quote call."""
        gtts = self.broker.list_gtts()
        if not include_all:
            gtts = [gtt for gtt in gtts if gtt.can_fire]
        if not gtts:
            return []
        keys = sorted({gtt.instrument_key for gtt in gtts})
        try:
            quotes = self.broker.quotes(keys)
        except BrokerError as exc:
            # The book is still worth having without prices; last_price 0 means "unknown".
            log.warning("order book without last prices: %s", exc)
            quotes = {}
        recorded = self.orders.by_trigger_ids([gtt.gtt_id for gtt in gtts])
        return [
            self._entry(gtt, quotes[gtt.instrument_key].last_price if gtt.instrument_key in quotes else None,
                        recorded.get(gtt.gtt_id))
            for gtt in gtts
        ]

    def status(self, trigger_id: str) -> dict:
        """One trigger in any state, with each leg's broker status, order id and message."""
        recorded = self.orders.get(trigger_id)
        broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
        gtt = self.broker.get_gtt(broker_id)
        if gtt is None:
            if recorded is None:
                raise GttNotFound(trigger_id)
            # Upstox's details call does not return completed GTTs: answer from our record.
            return self._recorded_entry(recorded)
        if recorded is not None:
            state = gtt_status(gtt)
            if state != recorded.status:
                self.orders.set_status(trigger_id, state, next((r.message for r in gtt.rules if r.message), None))
        return self._entry(gtt, None, recorded)

    def _recorded_entry(self, recorded: GttOrder) -> dict:
        return {
            "trigger_id": recorded.trigger_id,
            "trigger_type": recorded.trigger_type,
            "status": recorded.status,
            "message": recorded.status_message,
            "symbol": recorded.symbol,
            "exchange": recorded.exchange,
            "trigger_prices": sorted(Decimal(leg["trigger_price"]) for leg in recorded.legs),
            "last_price": Decimal(0),
            "legs": recorded.legs,
            "created_at": ist_text(recorded.placed_at),
            "updated_at": ist_text(recorded.modified_at),
            "expires_at": "",
        }
