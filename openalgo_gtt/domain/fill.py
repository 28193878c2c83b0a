"""The fill of a fired GTT leg's order, as the trader reads it and as the gateway follows it:
"bought 3 IDEA at 9.70", and when an order still open at the broker is asked about again.
Pure: no I/O; the time is given.

A fired leg's order is looked up once when the fire is seen (its answer goes in the "triggered"
message), then again only while it is open, less and less often, and not past FOLLOW_FOR: never
a poll of every order.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from openalgo_gtt.domain.model import OrderFill

# An open order is asked about again after FIRST_RECHECK, then at twice the last gap, never
# less often than MAX_RECHECK; a DAY order ends with its day, so following stops after a day.
FIRST_RECHECK = timedelta(seconds=5)
MAX_RECHECK = timedelta(minutes=10)
FOLLOW_FOR = timedelta(days=1)
UNKNOWN = "UNKNOWN"  # not looked up yet (the order id is not known, or the look-up failed)


@dataclass(frozen=True)
class LegFill:
    """One fired leg's order as the store follows it (one `order_fills` row). `order_id` is None
    until the broker names the order (Upstox may list a fired rule before its order exists)."""

    broker_id: str  # the broker GTT of the leg
    leg: str  # which of its rules fired: entry, target, stoploss, or single (a GTT of one rule)
    trigger_id: str
    order_id: str | None
    action: str | None  # the fired rule's side (a bracket's exit sells what its entry bought)
    quantity: int | None
    fill: OrderFill
    checks: int  # look-ups made so far
    checked_at: datetime
    fired_at: datetime

    @property
    def final(self) -> bool:
        return self.fill.final


def unknown_fill() -> OrderFill:
    return OrderFill(UNKNOWN, 0, None, None)


def next_check(leg: LegFill) -> datetime | None:
    """When an unfinished leg's order is to be looked up again; None once it is final or has
    been followed for FOLLOW_FOR."""
    if leg.final or leg.checked_at - leg.fired_at >= FOLLOW_FOR:
        return None
    gap = min(FIRST_RECHECK * (2 ** max(leg.checks - 1, 0)), MAX_RECHECK)
    return leg.checked_at + gap


def fill_json(fill: OrderFill) -> dict:
    """A fill as the API and the events carry it (prices as exact strings in events; the API
    turns them into numbers)."""
    return {"status": fill.status, "filled_quantity": fill.filled_quantity,
            "average_price": None if fill.average_price is None else str(fill.average_price),
            "message": fill.message}


def fill_from_json(data: dict) -> OrderFill:
    price = data.get("average_price")
    return OrderFill(str(data.get("status") or UNKNOWN), int(data.get("filled_quantity") or 0),
                     None if price in (None, "") else Decimal(str(price)), data.get("message"))


def _price(value: Decimal | None) -> str:
    if value is None:
        return "an unknown price"
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value.normalize())


def describe(fill: OrderFill, action: str | None, symbol: str | None, quantity: int | None) -> str:
    """The fill in a trader's words: "bought 3 IDEA at 9.70", "order open: sold 1 of 3 IDEA at
    101.50 so far", "order rejected: margin shortfall"."""
    verb = "sold" if (action or "").upper() == "SELL" else "bought"
    what = symbol or "it"
    filled = fill.filled_quantity
    of = f" of {quantity}" if quantity and filled < quantity else ""
    done = f"{verb} {filled}{of} {what} at {_price(fill.average_price)}"
    reason = f": {fill.message}" if fill.message else ""
    if fill.status == "COMPLETE":
        return done
    if fill.status == UNKNOWN:
        return "order not known at the broker yet"
    if fill.status in ("REJECTED", "CANCELLED"):
        after = f" after it {done}" if filled else ""
        return f"order {fill.status.lower()}{after}{reason}"
    if filled:
        return f"order {fill.status.lower()}: {done} so far"
    return f"order {fill.status.lower()} at the broker, nothing filled yet"
