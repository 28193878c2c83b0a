"""The broker interface the GTT services call.

Upstox's and Kite's adapters and the sandbox broker implement `Broker`; nothing above this module
knows an Upstox JSON shape. The values that cross it (`GttRequest`, `BrokerGtt`, `Quote`) are the
domain's (`domain/model.py`). A broker that takes its prices from pushed ticks (the sandbox) is
also a `TickSink`; `Tick` and `FiredEvent` are what cross that interface.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Callable, Iterable, Protocol, Sequence, runtime_checkable

from openalgo_gtt.brokers.pacing import SlotHold
from openalgo_gtt.domain.model import BrokerFeatures, BrokerGtt, GttRequest, OrderFill, Quote


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

    name: str  # "upstox" | "kite" | "sandbox"
    features: BrokerFeatures  # what its GTTs can express; the planner shapes requests by it

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

    def hold_order_slots(self, calls: int, within: float | None) -> SlotHold | None:
        """The pacing slots of `calls` order calls, each due within `within` seconds (None:
        whenever), taken now (brokers/pacing.py): use as `with hold:`, the calls made inside take
        them, and the unused go back. None when they are not to be had in time."""


@runtime_checkable
class OrderReader(Protocol):
    """A broker whose orders the gateway can follow (Kite): how a staged bracket learns that its
    entry has filled (services/staged_bracket.py)."""

    def order_status(self, order_id: str) -> tuple[str, str | None]:
        """The order's latest state (COMPLETE, REJECTED, CANCELLED, OPEN, ...) and the broker's message."""


# --- prices pushed in (the sandbox) -----------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """One price update. `open` overrides the day's open; `at` defaults to the broker's clock."""

    instrument_key: str
    ltp: Decimal
    open: Decimal | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class FiredEvent:
    """A rule fired and its child order filled (as a LIMIT at `price`)."""

    gtt_id: str
    instrument_key: str
    strategy: str  # ENTRY | TARGET | STOPLOSS
    trigger_type: str
    transaction_type: str  # the child order's side
    quantity: int
    price: Decimal  # the fill: the trigger price (a trailing stop's position when it fired)
    ltp: Decimal  # the last price that filled it
    order_id: str
    at: datetime
    market: bool = False  # the caller asked for a MARKET child (the rule has market_protection)
    product: str = ""  # the GTT's product (I | D | MTF)


@runtime_checkable
class TickSink(Protocol):
    """A broker whose prices are pushed to it (the sandbox); Upstox has its own market feed."""

    def apply_ticks(self, ticks: Iterable[Tick]) -> list[FiredEvent]:
        """Apply price updates in order; returns every fill they caused, in firing order."""

    def take_expired(self) -> list[str]:
        """The ids of GTTs this broker expired since the last call (expiry happens on any write,
        so the gateway asks after each tick instead of polling)."""


@runtime_checkable
class PaperAccount(Protocol):
    """A broker that keeps a paper account (the sandbox): fired rules become orders, trades and
    positions (domain/paper.py)."""

    def paper_orders(self) -> list:
        """Every paper order, oldest first."""

    def paper_trades(self) -> list:
        """Every paper trade, oldest first."""

    def paper_positions(self) -> list:
        """Every position, closed ones with quantity 0."""

    def cancel_paper_order(self, order_id: str) -> tuple:
        """Cancel an open paper order: (the order as it is now or None when there is none,
        whether this call cancelled it)."""


@runtime_checkable
class LiveFed(Protocol):
    """A sandbox whose prices may be read from a broker's quotes (services/live_prices.py)."""

    def watched_instruments(self) -> list[str]:
        """The instrument keys it needs prices for now."""


class QuoteSource(Protocol):
    """Where live prices come from: a broker's quote API and nothing else of it (never its order
    or GTT routes)."""

    def last_prices(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last prices, keyed by instrument key; keys the broker does not know are left out."""


@runtime_checkable
class OrderFillReader(Protocol):
    """A broker that says what became of one order (Upstox's order details, Kite's order history,
    the sandbox's paper orders): a fired GTT leg's fill (services/fills.py)."""

    def order_fill(self, order_id: str) -> OrderFill | None:
        """The order's status, filled quantity, average price and message; None when unknown."""
