"""The broker interface the GTT services call, and the plain values that cross it.

Upstox's adapter and the sandbox broker both implement `Broker`; nothing above this module
knows an Upstox JSON shape. Prices are `Decimal` in rupees everywhere, so nothing is lost to
binary floating point between the caller's request and the broker's wire format.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Callable, Protocol, Sequence

# Upstox GTT vocabulary (v3). Constants, never bare strings scattered through the code.
SINGLE = "SINGLE"
MULTIPLE = "MULTIPLE"

ENTRY = "ENTRY"
TARGET = "TARGET"
STOPLOSS = "STOPLOSS"

ABOVE = "ABOVE"
BELOW = "BELOW"
IMMEDIATE = "IMMEDIATE"

BUY = "BUY"
SELL = "SELL"

PRODUCT_INTRADAY = "I"
PRODUCT_DELIVERY = "D"
PRODUCT_MTF = "MTF"

# Rule statuses as Upstox names them.
SCHEDULED = "SCHEDULED"
TRIGGERED = "TRIGGERED"
EXPIRED = "EXPIRED"
OPEN = "OPEN"
COMPLETED = "COMPLETED"
CANCELLED = "CANCELLED"
PENDING = "PENDING"
FAILED = "FAILED"
INACTIVE = "INACTIVE"
RULE_STATUSES = (SCHEDULED, TRIGGERED, EXPIRED, OPEN, COMPLETED, CANCELLED, PENDING, FAILED, INACTIVE)
# A GTT with any rule in one of these states can still fire.
LIVE_RULE_STATUSES = frozenset({SCHEDULED, PENDING, OPEN, INACTIVE})


@dataclass(frozen=True)
class GttRule:
    """One rule of a GTT as the gateway asks for it."""

    strategy: str  # ENTRY | TARGET | STOPLOSS
    trigger_type: str  # ABOVE | BELOW | IMMEDIATE
    trigger_price: Decimal
    trailing_gap: Decimal | None = None  # STOPLOSS only
    market_protection: int | None = None  # percent; set when the caller asked for a MARKET child


@dataclass(frozen=True)
class GttRequest:
    """Everything needed to place (or fully replace, on modify) one broker GTT."""

    type: str  # SINGLE | MULTIPLE
    instrument_key: str  # e.g. "NSE_EQ|INE669E01016"
    transaction_type: str  # BUY | SELL: the ENTRY side
    product: str  # I | D | MTF
    quantity: int
    rules: tuple[GttRule, ...]


@dataclass(frozen=True)
class RuleState:
    """One rule of a GTT as the broker reports it."""

    strategy: str
    trigger_type: str
    trigger_price: Decimal
    transaction_type: str
    status: str
    message: str | None = None
    order_id: str | None = None
    trailing_gap: Decimal | None = None


@dataclass(frozen=True)
class BrokerGtt:
    """One GTT as the broker reports it."""

    gtt_id: str
    type: str
    instrument_key: str
    segment: str  # e.g. "NSE_EQ"
    trading_symbol: str
    quantity: int
    product: str
    rules: tuple[RuleState, ...]
    created_at: datetime | None = None  # timezone-aware (UTC)
    expires_at: datetime | None = None  # timezone-aware (UTC)

    @property
    def can_fire(self) -> bool:
        return any(rule.status in LIVE_RULE_STATUSES for rule in self.rules)


@dataclass(frozen=True)
class Quote:
    instrument_key: str
    last_price: Decimal
    open: Decimal | None  # today's open; None (or 0 from the broker) before the market opens


@dataclass(frozen=True)
class BrokerCall:
    """One HTTP call made to the broker, for the audit record."""

    method: str
    path: str
    status: int | None  # None when no HTTP answer came back
    latency_ms: float
    error: str | None = None


BrokerCallObserver = Callable[[BrokerCall], None]


class Broker(Protocol):
    """What the GTT services need from a broker. Errors are `openalgo_gtt.brokers.errors` types."""

    name: str  # "upstox" | "sandbox"

    def place_gtt(self, request: GttRequest) -> str:
        """Place one GTT; returns the broker's GTT id."""

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        """Replace a GTT's quantity and rules; returns its id."""

    def cancel_gtt(self, gtt_id: str) -> str:
        """Cancel a GTT; returns its id."""

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        """One GTT, or None when the broker does not know it."""

    def list_gtts(self) -> list[BrokerGtt]:
        """Every GTT of the account, in any state."""

    def quotes(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last price and today's open for many instruments, keyed by instrument key."""
