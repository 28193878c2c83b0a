"""The gateway's vocabulary, defined once: what a GTT is, asked for and as a broker reports it.

Every layer speaks these types. Brokers translate their wire formats into them; the store keeps
them; the API renders them. Prices are `Decimal` in rupees everywhere, so nothing is lost to
binary floating point between the caller's request and a broker's wire format. The enums are
`StrEnum`s: they compare equal to, and serialise as, the strings the brokers and OpenAlgo use.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

# A rule's status is defined with its phase (waiting, fired, ...), in one module; named here too.
from openalgo_gtt.domain.rule_status import Phase, RuleStatus, phase


class GttType(StrEnum):
    """A broker GTT's shape: one rule, an entry with exits (Upstox v3's names), or a native
    one-cancels-other pair of exits in one GTT (Kite's `two-leg`)."""

    SINGLE = "SINGLE"
    MULTIPLE = "MULTIPLE"
    OCO = "OCO"


class Strategy(StrEnum):
    """A rule's role inside one broker GTT."""

    ENTRY = "ENTRY"
    TARGET = "TARGET"
    STOPLOSS = "STOPLOSS"


class TriggerType(StrEnum):
    ABOVE = "ABOVE"
    BELOW = "BELOW"
    IMMEDIATE = "IMMEDIATE"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class BrokerProduct(StrEnum):
    """Products as a GTT request carries them (Upstox's codes)."""

    INTRADAY = "I"
    DELIVERY = "D"
    MTF = "MTF"


class TriggerStatus(StrEnum):
    """A trigger's state as OpenAlgo's order book shows it, and as the gateway records it."""

    ACTIVE = "active"
    TRIGGERED = "triggered"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class TriggerKind(StrEnum):
    """The order book's trigger_type labels, also what the gateway records."""

    SINGLE = "single"
    BRACKET = "bracket"
    TWO_LEG = "two-leg"


# Module-level names for the members, as the rules are written with them.
SINGLE, MULTIPLE, NATIVE_OCO = GttType
ENTRY, TARGET, STOPLOSS = Strategy
ABOVE, BELOW, IMMEDIATE = TriggerType
BUY, SELL = Side
PRODUCT_INTRADAY, PRODUCT_DELIVERY, PRODUCT_MTF = BrokerProduct
SCHEDULED, TRIGGERED, EXPIRED, OPEN, COMPLETED, CANCELLED, PENDING, FAILED, INACTIVE = RuleStatus


@dataclass(frozen=True)
class GttRule:
    """One rule of a GTT as the gateway asks for it."""

    strategy: str  # Strategy
    trigger_type: str  # TriggerType
    trigger_price: Decimal
    trailing_gap: Decimal | None = None  # STOPLOSS only
    market_protection: int | None = None  # percent; set when the caller asked for a MARKET child
    # The child order's LIMIT price on a broker that takes one (Kite); None: the trigger price
    # (Upstox has no separate limit price).
    price: Decimal | None = None


@dataclass(frozen=True)
class GttRequest:
    """Everything needed to place (or fully replace, on modify) one broker GTT."""

    type: str  # GttType
    instrument_key: str  # e.g. "NSE_EQ|INE669E01016"
    transaction_type: str  # Side: the ENTRY side
    product: str  # BrokerProduct
    quantity: int
    rules: tuple[GttRule, ...]

    def to_json(self) -> dict:
        """The request as JSON (prices as strings, so every paisa survives a round trip)."""
        return {
            "type": self.type, "instrument_key": self.instrument_key, "transaction_type": self.transaction_type,
            "product": self.product, "quantity": self.quantity,
            "rules": [{"strategy": r.strategy, "trigger_type": r.trigger_type, "trigger_price": str(r.trigger_price),
                       "trailing_gap": None if r.trailing_gap is None else str(r.trailing_gap),
                       "market_protection": r.market_protection,
                       "price": None if r.price is None else str(r.price)} for r in self.rules],
        }

    @classmethod
    def from_json(cls, data: dict) -> "GttRequest":
        rules = tuple(GttRule(r["strategy"], r["trigger_type"], Decimal(r["trigger_price"]),
                              None if r.get("trailing_gap") is None else Decimal(r["trailing_gap"]),
                              r.get("market_protection"), None if r.get("price") is None else Decimal(r["price"]))
                      for r in data["rules"])
        return cls(data["type"], data["instrument_key"], data["transaction_type"], data["product"],
                   int(data["quantity"]), rules)


@dataclass(frozen=True)
class RuleState:
    """One rule of a GTT as the broker reports it."""

    strategy: str
    trigger_type: str
    trigger_price: Decimal
    transaction_type: str
    status: str  # RuleStatus
    message: str | None = None
    order_id: str | None = None
    trailing_gap: Decimal | None = None
    price: Decimal | None = None  # the child order's own LIMIT price, where the broker has one (Kite)


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
    # The broker's time of the last change (a rule fired, was cancelled or modified), when it says.
    updated_at: datetime | None = None  # timezone-aware (UTC)

    @property
    def can_fire(self) -> bool:
        """Whether any rule can still fire (is waiting): the one definition of a live GTT."""
        return any(phase(rule.status) is Phase.WAITING for rule in self.rules)

    @property
    def cancelled(self) -> bool:
        """Whether every rule was cancelled (in the app, or by the gateway withdrawing it)."""
        return all(phase(rule.status) is Phase.CANCELLED for rule in self.rules)

    def matches(self, request: GttRequest) -> bool:
        """Whether this is the GTT `request` asked for (instrument, side, quantity, product and
        every rule's strategy, trigger type and price)."""
        if (self.instrument_key, self.type, self.quantity, self.product) != (
                request.instrument_key, request.type, request.quantity, request.product):
            return False
        # A native OCO (Kite's two-leg) has no ENTRY: both its exits are on the request's side.
        entry = next((r for r in self.rules if r.strategy == ENTRY or self.type == NATIVE_OCO), None)
        if entry is None or entry.transaction_type != request.transaction_type:
            return False
        have = sorted((r.strategy, r.trigger_type, Decimal(r.trigger_price)) for r in self.rules)
        want = sorted((r.strategy, r.trigger_type, Decimal(r.trigger_price)) for r in request.rules)
        return have == want


@dataclass(frozen=True)
class OrderFill:
    """What became of a fired leg's order at the broker: its status (as the broker words it, upper
    case: COMPLETE, REJECTED, CANCELLED, OPEN, ...), how much filled and at what average price,
    and the broker's message (a rejection's reason)."""

    status: str
    filled_quantity: int
    average_price: Decimal | None
    message: str | None = None

    @property
    def final(self) -> bool:
        return self.status in ("COMPLETE", "REJECTED", "CANCELLED")


@dataclass(frozen=True)
class BrokerFeatures:
    """What one broker's GTTs can express. The planner shapes every request by it, so a new
    broker declares its features instead of adding branches above the `Broker` interface."""

    name: str  # as messages name the broker: "Upstox", "Kite"
    # OpenAlgo product label -> the broker's product code; a label missing here is refused.
    products: tuple[tuple[str, str], ...]
    limit_price: bool = False  # the child order has its own LIMIT price (Kite) or fires at the trigger (Upstox)
    native_oco: bool = False  # one GTT holds both legs of an OCO (Kite's two-leg)
    native_bracket: bool = True  # entry and exits in one GTT (Upstox MULTIPLE); else staged by the gateway
    trailing_stop: bool = True  # a stop-loss can trail (Upstox's trailing_gap)

    def product(self, label: str) -> str | None:
        return dict(self.products).get(label)


UPSTOX_FEATURES = BrokerFeatures(
    name="Upstox",
    products=(("CNC", PRODUCT_DELIVERY), ("NRML", PRODUCT_DELIVERY), ("MIS", PRODUCT_INTRADAY), ("MTF", PRODUCT_MTF)),
)


@dataclass(frozen=True)
class Quote:
    instrument_key: str
    last_price: Decimal
    open: Decimal | None  # today's open; None (or 0 from the broker) before the market opens


class EventKind(StrEnum):
    """What the gateway tells the trader about (NOTIFY_EVENTS names these)."""

    TRIGGERED = "triggered"  # a GTT or one of its legs fired (a bracket's target or stop-loss too)
    # A fired leg's order ended (filled, rejected or cancelled) after "triggered" told it open.
    ORDER_DONE = "order_done"
    REJECTED = "rejected"  # failed or rejected at the broker, with its reason
    EXPIRED = "expired"
    CANCELLED_AT_BROKER = "cancelled_at_broker"  # cancelled outside the gateway (the Upstox app)
    OCO_SETTLED = "oco_settled"  # one leg fired, the gateway cancelled the other
    OCO_BOTH_FIRED = "oco_both_fired"  # the rare case: both legs fired before either was cancelled
    FOUND_LATE = "found_late"  # a place whose answer was lost, found at the broker afterwards
    OUTCOME_UNKNOWN = "outcome_unknown"  # a place whose outcome could not be settled
    QUEUED_PLACED = "queued_placed"  # a place queued in a burst was sent and recorded (its caller heard 202)
    DAILY_LIMIT_REACHED = "daily_limit_reached"
    TOKEN_EXPIRING = "token_expiring"  # the Upstox token expires at 03:30 IST tomorrow, not yet renewed
    TOKEN_REJECTED = "token_rejected"
    # Through the API: the caller already knows, so not notified unless NOTIFY_EVENTS names them.
    PLACED = "placed"
    MODIFIED = "modified"
    CANCELLED = "cancelled"


class EventLevel(StrEnum):
    """How a message is flagged to the trader (Apprise's notification types)."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


class DeliveryState(StrEnum):
    """One event's delivery to one notification URL."""

    PENDING = "pending"  # not yet delivered; retried with backoff
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the retry window (24 h)
    DROPPED = "dropped"  # its URL is no longer configured
