"""Paper trading on the sandbox: its orders, trades, positions and funds, as pure rules.

A fired sandbox rule becomes a paper order (`order_from_fire`): MARKET when the caller asked for
a MARKET child (the rule carries `market_protection`), filled at once at the price that fired
it; otherwise a LIMIT at the rule's price (Upstox's child order is a LIMIT at the trigger),
filled at that price as soon as the last price reaches it (BUY: ltp <= limit; SELL: ltp >=
limit), at the firing price itself when it already does. A fill is a trade; a trade moves the
position of its instrument and product (`apply_trade`, average cost).

Margin (`leg_margin`, `trigger_margin`, `position_margin`) follows the table in MARGIN_RULES;
docs/paper.md documents it. Every amount is a Decimal in rupees; nothing here is a float.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Iterable

from openalgo_gtt.domain.clock import IST
from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.model import BUY

MARKET = "MARKET"
LIMIT = "LIMIT"
# Order statuses as OpenAlgo's order book words them.
ORDER_OPEN = "open"
ORDER_COMPLETE = "complete"
ORDER_CANCELLED = "cancelled"

_MICRO = Decimal("0.000001")  # what a stored amount keeps (Numeric(.., 6)): exact below the paisa
ZERO = Decimal(0)
ONE = Decimal(1)

DERIVATIVE_EXCHANGES = frozenset({"NFO", "BFO", "CDS", "BCD", "MCX"})

# (product, kind) -> (rate on a BUY, rate on a SELL), of the value quantity x price. "equity" is
# NSE/BSE cash, "future" and "option" the derivative exchanges (an option: a symbol ending in
# CE or PE). A CNC or MTF SELL sells holdings: it blocks nothing. Not SPAN: a fixed rate each.
MARGIN_RULES: dict[tuple[str, str], tuple[Decimal, Decimal]] = {
    ("CNC", "equity"): (ONE, ZERO),
    ("MTF", "equity"): (Decimal("0.25"), ZERO),
    ("MIS", "equity"): (Decimal("0.20"), Decimal("0.20")),
    ("MIS", "future"): (Decimal("0.20"), Decimal("0.20")),
    ("MIS", "option"): (ONE, ONE),
    ("NRML", "future"): (Decimal("0.20"), Decimal("0.20")),
    ("NRML", "option"): (ONE, ONE),
}
DEFAULT_RATES = (ONE, ONE)  # any other pair (CNC on NFO, say): the full value either way


def kind_of(exchange: str, symbol: str) -> str:
    if exchange not in DERIVATIVE_EXCHANGES:
        return "equity"
    return "option" if symbol.upper().endswith(("CE", "PE")) else "future"


def margin_rate(product: str, exchange: str, symbol: str, side: str) -> Decimal:
    buy, sell = MARGIN_RULES.get((product.upper(), kind_of(exchange.upper(), symbol)), DEFAULT_RATES)
    return buy if side == BUY else sell


def money(value: Decimal) -> Decimal:
    """An amount as stored: to the micro-rupee (half-even), so every paisa is exact."""
    return value.quantize(_MICRO, rounding=ROUND_HALF_EVEN)


def rupees(value: Decimal) -> str:
    """An amount to the paisa, for people: 1500 -> "1500.00"."""
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)}"


# --- margin of GTTs -----------------------------------------------------------------------------


def leg_margin(leg: dict, product: str, exchange: str, symbol: str) -> Decimal:
    """One recorded leg (store's `legs` JSON: action, quantity, price, trigger_price): what its
    order would block once it is sent. The value is taken at its limit price (the trigger for
    a MARKET child)."""
    price = Decimal(str(leg.get("price") or leg.get("trigger_price") or 0))
    quantity = int(leg.get("quantity") or 0)
    return money(margin_rate(product, exchange, symbol, leg.get("action", BUY)) * price * quantity)


def trigger_margin(trigger_type: str, product: str, exchange: str, symbol: str, legs: Iterable[dict]) -> Decimal:
    """What a live trigger blocks: an OCO (two-leg) the larger of its legs (one cancels the
    other); a single its leg; a bracket its entry (its exits close what the entry opens)."""
    legs = list(legs)
    if trigger_type == "two-leg":
        return max((leg_margin(leg, product, exchange, symbol) for leg in legs), default=ZERO)
    opening = [leg for leg in legs if leg.get("role") in ("entry", "single", None)] or legs[:1]
    return sum((leg_margin(leg, product, exchange, symbol) for leg in opening), ZERO)


class InsufficientFunds(DomainError):
    """A GTT the paper account cannot fund (HTTP 400; nothing reaches the broker)."""

    def __init__(self, needs: Decimal, available: Decimal) -> None:
        super().__init__(f"insufficient funds: needs ₹{rupees(needs)}, available ₹{rupees(available)}",
                         details={"needs": rupees(needs), "available": rupees(available)})


# --- orders and trades --------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperOrder:
    order_id: str
    gtt_id: str
    strategy: str  # the rule it came from: ENTRY | TARGET | STOPLOSS
    instrument_key: str
    symbol: str  # OpenAlgo's names, kept with the order
    exchange: str
    product: str  # the broker's code: I | D | MTF
    side: str  # BUY | SELL
    quantity: int
    pricetype: str  # MARKET | LIMIT
    price: Decimal  # the LIMIT price (0 for MARKET)
    trigger_price: Decimal  # where the rule fired
    status: str  # ORDER_OPEN | ORDER_COMPLETE | ORDER_CANCELLED
    created_at: datetime
    updated_at: datetime
    average_price: Decimal | None = None  # the fill price once complete

    def day_over(self, now: datetime) -> bool:
        """An open order lives for its day (a DAY order, as a GTT's child order is): once the
        IST day it was created on has ended, it is cancelled, never filled."""
        return self.status == ORDER_OPEN and self.day_over_at(now)

    def day_over_at(self, now: datetime) -> bool:
        """Whether the IST day this order was created on had ended by `now`, whatever its status."""
        return now.astimezone(IST).date() > self.created_at.astimezone(IST).date()

    def cancelled(self, at: datetime) -> "PaperOrder":
        return replace(self, status=ORDER_CANCELLED, updated_at=at)

    def marketable(self, ltp: Decimal) -> bool:
        if self.pricetype == MARKET:
            return True
        return ltp <= self.price if self.side == BUY else ltp >= self.price

    def filled(self, ltp: Decimal, at: datetime) -> tuple["PaperOrder", "PaperTrade"]:
        """The order complete at this last price (which must reach it), and its trade."""
        price = ltp if self.pricetype == MARKET else self.price
        order = replace(self, status=ORDER_COMPLETE, average_price=price, updated_at=at)
        return order, PaperTrade(order_id=self.order_id, instrument_key=self.instrument_key, symbol=self.symbol,
                                 exchange=self.exchange, product=self.product, side=self.side,
                                 quantity=self.quantity, price=price, at=at)


@dataclass(frozen=True)
class PaperTrade:
    order_id: str
    instrument_key: str
    symbol: str
    exchange: str
    product: str
    side: str
    quantity: int
    price: Decimal
    at: datetime

    @property
    def value(self) -> Decimal:
        return self.price * self.quantity


def order_from_fire(*, order_id: str, gtt_id: str, strategy: str, instrument_key: str, symbol: str, exchange: str,
                    product: str, side: str, quantity: int, trigger_price: Decimal, market: bool,
                    at: datetime) -> PaperOrder:
    return PaperOrder(order_id=order_id, gtt_id=gtt_id, strategy=strategy, instrument_key=instrument_key,
                      symbol=symbol, exchange=exchange, product=product, side=side, quantity=quantity, pricetype=MARKET if market else LIMIT,
                      price=ZERO if market else trigger_price, trigger_price=trigger_price, status=ORDER_OPEN,
                      created_at=at, updated_at=at)


# --- positions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """Net quantity (negative: short), the cost of the open quantity and the realised P&L."""

    instrument_key: str
    product: str
    symbol: str = ""
    exchange: str = ""
    quantity: int = 0
    cost: Decimal = ZERO  # what the open quantity cost (positive for a long and a short alike)
    realised: Decimal = ZERO
    updated_at: datetime | None = None

    @property
    def average_price(self) -> Decimal:
        return ZERO if self.quantity == 0 else money(self.cost / abs(self.quantity))

    def unrealised(self, ltp: Decimal | None) -> Decimal:
        if self.quantity == 0 or ltp is None:
            return ZERO
        value = ltp * abs(self.quantity)
        return money(value - self.cost if self.quantity > 0 else self.cost - value)


def apply_trade(position: Position, trade: PaperTrade) -> Position:
    """The position after `trade` at average cost: adding to it raises the cost, reducing it
    realises (price - average) x quantity (reversed for a short), going through zero opens the
    rest at the trade's price."""
    signed = trade.quantity if trade.side == BUY else -trade.quantity
    quantity, cost, realised = position.quantity, position.cost, position.realised
    if quantity == 0 or (quantity > 0) == (signed > 0):
        return replace(position, quantity=quantity + signed, cost=cost + trade.price * trade.quantity,
                       updated_at=trade.at)
    closing = min(abs(signed), abs(quantity))
    removed = cost if closing == abs(quantity) else money(cost * closing / abs(quantity))
    proceeds = trade.price * closing
    realised += (proceeds - removed) if quantity > 0 else (removed - proceeds)
    remaining = quantity + signed
    cost -= removed
    if remaining != 0 and (remaining > 0) != (quantity > 0):  # through zero: the rest opens anew
        cost = trade.price * abs(remaining)
    return replace(position, quantity=remaining, cost=cost if remaining else ZERO, realised=realised,
                   updated_at=trade.at)


def openalgo_product(code: str, exchange: str) -> str:
    """The broker's product code as OpenAlgo names it: I -> MIS, MTF -> MTF, D -> CNC on the
    cash exchanges and NRML on the derivative ones."""
    if code == "I":
        return "MIS"
    if code == "MTF":
        return "MTF"
    return "NRML" if exchange in DERIVATIVE_EXCHANGES else "CNC"


def position_margin(position: Position) -> Decimal:
    """What an open position holds: its cost at the BUY rate of its product (a short is
    blocked as fully as a long)."""
    if position.quantity == 0:
        return ZERO
    product = openalgo_product(position.product, position.exchange)
    return money(position.cost * margin_rate(product, position.exchange, position.symbol, BUY))


def order_margin(order: PaperOrder, now: datetime | None = None) -> Decimal:
    """What an open order blocks until it fills: its value at its limit (the trigger for a
    MARKET order) at its side's rate; nothing once its day is over."""
    if order.status != ORDER_OPEN or (now is not None and order.day_over(now)):
        return ZERO
    price = order.price if order.pricetype == LIMIT else order.trigger_price
    product = openalgo_product(order.product, order.exchange)
    return money(price * order.quantity * margin_rate(product, order.exchange, order.symbol, order.side))


@dataclass(frozen=True)
class Funds:
    capital: Decimal
    realised: Decimal
    unrealised: Decimal
    used: Decimal  # positions' margin plus what live GTTs block

    @property
    def available(self) -> Decimal:
        return self.capital + self.realised - self.used


@dataclass(frozen=True)
class Commitment:
    """A place that blocks margin: a live recorded trigger, or a place still being sent."""

    trigger_type: str  # single | bracket | two-leg
    product: str  # OpenAlgo's: CNC, NRML, MIS, MTF
    exchange: str
    symbol: str
    legs: tuple[dict, ...]
    trigger_id: str | None = None  # a recorded trigger's; None for a place still being sent

    @property
    def margin(self) -> Decimal:
        return trigger_margin(self.trigger_type, self.product, self.exchange, self.symbol, self.legs)


def account(capital: Decimal, positions: Iterable[Position], open_orders: Iterable[PaperOrder],
            commitments: Iterable[Commitment], prices: dict[str, Decimal] | None = None,
            now: datetime | None = None) -> Funds:
    """The paper account now: realised P&L adds to the capital; positions, open orders and live
    GTTs use margin; unrealised P&L (marked to `prices`) is shown, never spent."""
    positions, prices = list(positions), prices or {}
    used = (sum((position_margin(p) for p in positions), ZERO) + sum((order_margin(o, now) for o in open_orders), ZERO)
            + sum((c.margin for c in commitments), ZERO))
    return Funds(capital=capital, realised=sum((p.realised for p in positions), ZERO),
                 unrealised=sum((p.unrealised(prices.get(p.instrument_key)) for p in positions), ZERO), used=used)


def check_funds(needs: Decimal, funds: Funds) -> None:
    """Refuse a place needing more than the account has free."""
    if needs > 0 and needs > funds.available:
        raise InsufficientFunds(needs, max(funds.available, ZERO))


__all__ = [
    "Commitment", "Funds", "InsufficientFunds", "account", "LIMIT", "MARKET", "ORDER_CANCELLED", "ORDER_COMPLETE", "ORDER_OPEN",
    "PaperOrder", "PaperTrade", "Position", "apply_trade", "check_funds", "openalgo_product", "order_from_fire",
    "order_margin", "position_margin", "rupees", "trigger_margin",
]
