"""The sandbox's GTTs in memory, and the checks Upstox applies before accepting one.

`Gtt` and `Rule` are the live, mutable state the trigger engine (`engine.py`) works on and the
storage (`storage.py`) loads and saves; `Changes` is the journal between the two. No database.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from openalgo_gtt.brokers.base import FiredEvent, Tick
from openalgo_gtt.brokers.errors import InputRejected
from openalgo_gtt.domain.clock import IST, as_utc
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, ENTRY, IMMEDIATE, INACTIVE, MULTIPLE, OPEN, PRODUCT_DELIVERY,
    PRODUCT_INTRADAY, PRODUCT_MTF, SCHEDULED, SELL, SINGLE, STOPLOSS, TARGET, BrokerGtt, GttRequest, RuleState,
)
from openalgo_gtt.domain.rule_status import Phase, phase

if TYPE_CHECKING:
    from openalgo_gtt.brokers.sandbox.index import Ladder

# Error codes. Upstox documents UDAPI1134/UDAPI1135 for a missing / malformed gtt_order_id; it
# documents no code for the other cases, so the sandbox uses its own.
CODE_INVALID = "SANDBOX-INVALID-INPUT"
CODE_NOT_FOUND = "SANDBOX-GTT-NOT-FOUND"
CODE_NOT_LIVE = "SANDBOX-GTT-NOT-LIVE"
CODE_ID_MISSING = "UDAPI1134"
CODE_ID_FORMAT = "UDAPI1135"

# The statuses a rule sits in the price index with: it fires on a tick. (INACTIVE exits are
# live too, but wait for their ENTRY.)
INDEXED_STATUSES = (SCHEDULED, OPEN)

_STRATEGIES = (ENTRY, TARGET, STOPLOSS)
_PRODUCTS = (PRODUCT_INTRADAY, PRODUCT_DELIVERY, PRODUCT_MTF)
_ENTRY_TRIGGERS = (ABOVE, BELOW, IMMEDIATE)
_END_OF_DAY = time(23, 59, 59)


def rejected(message: str, code: str = CODE_INVALID, http_status: int = 400) -> InputRejected:
    return InputRejected(message, code=code, http_status=http_status, may_have_reached=False)


def to_decimal(value, name: str) -> Decimal:
    """`value` as an exact, finite Decimal, or InputRejected naming `name`."""
    if isinstance(value, bool):
        raise rejected(f"{name} must be a number (got {value!r})")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise rejected(f"{name} must be a number (got {value!r})") from None
    if not number.is_finite():
        raise rejected(f"{name} must be a finite number (got {value!r})")
    return number


def _positive(value, name: str) -> Decimal:
    number = to_decimal(value, name)
    if number <= 0:
        raise rejected(f"{name} must be positive (got {value!r})")
    return number


# --- validation (the same rules Upstox applies) -----------------------------------------------


def check_tick(tick: Tick) -> Tick:
    """`tick` with exact, validated values, or InputRejected."""
    if not isinstance(tick.instrument_key, str) or not tick.instrument_key.strip():
        raise rejected(f"a tick needs an instrument_key (got {tick.instrument_key!r})")
    ltp = _positive(tick.ltp, "ltp")
    day_open = None if tick.open is None else _positive(tick.open, "open")
    if tick.at is not None and not isinstance(tick.at, datetime):
        raise rejected(f"at must be a datetime (got {tick.at!r})")
    return Tick(tick.instrument_key.strip(), ltp, day_open, as_utc(tick.at))


def validate_request(request: GttRequest) -> None:
    """Raise InputRejected unless `request` is a GTT Upstox would accept."""
    if request.type not in (SINGLE, MULTIPLE):
        raise rejected(f"type must be SINGLE or MULTIPLE (got {request.type!r})")
    key = request.instrument_key
    # Upstox's keys (SEGMENT|ID), or Kite's (EXCHANGE:TRADINGSYMBOL) when Kite's master is loaded.
    if not isinstance(key, str) or not any(sep in key and key.partition(sep)[0] and key.partition(sep)[2]
                                           for sep in ("|", ":")):
        raise rejected(f"instrument_token must look like SEGMENT|ID or EXCHANGE:SYMBOL (got {key!r})")
    if request.transaction_type not in (BUY, SELL):
        raise rejected(f"transaction_type must be BUY or SELL (got {request.transaction_type!r})")
    if request.product not in _PRODUCTS:
        raise rejected(f"product must be one of I, D, MTF (got {request.product!r})")
    quantity = request.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise rejected(f"quantity must be a positive whole number (got {quantity!r})")
    rules = tuple(request.rules or ())
    if request.type == SINGLE and len(rules) != 1:
        raise rejected(f"a SINGLE GTT has exactly 1 rule (got {len(rules)})")
    if request.type == MULTIPLE and not 2 <= len(rules) <= 3:
        raise rejected(f"a MULTIPLE GTT has 2 or 3 rules (got {len(rules)})")
    seen: set[str] = set()
    for rule in rules:
        if rule.strategy not in _STRATEGIES:
            raise rejected(f"strategy must be ENTRY, TARGET or STOPLOSS (got {rule.strategy!r})")
        if rule.strategy in seen:
            raise rejected(f"duplicate {rule.strategy} rule: each strategy may appear once")
        seen.add(rule.strategy)
        if rule.strategy == ENTRY:
            if rule.trigger_type not in _ENTRY_TRIGGERS:
                raise rejected(f"the ENTRY trigger_type must be ABOVE, BELOW or IMMEDIATE (got {rule.trigger_type!r})")
        elif rule.trigger_type != IMMEDIATE:
            raise rejected(f"the {rule.strategy} trigger_type must be IMMEDIATE (got {rule.trigger_type!r})")
        _positive(rule.trigger_price, f"{rule.strategy} trigger_price")
        if rule.trailing_gap is not None:
            if rule.strategy != STOPLOSS:
                raise rejected(f"trailing_gap is allowed on the STOPLOSS rule only (got it on {rule.strategy})")
            _positive(rule.trailing_gap, "trailing_gap")
    if ENTRY not in seen:
        raise rejected("every GTT needs an ENTRY rule")


def expiry_for(product: str, placed_at: datetime) -> datetime:
    """I: 23:59:59 IST of the day placed; D and MTF: 23:59:59 IST on that date a year later. UTC."""
    day = placed_at.astimezone(IST).date()
    if product != PRODUCT_INTRADAY:
        try:
            day = day.replace(year=day.year + 1)
        except ValueError:  # 29 February
            day = date(day.year + 1, 2, 28)
    return datetime.combine(day, _END_OF_DAY, tzinfo=IST).astimezone(timezone.utc)


# --- GTTs in memory -----------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Rule:
    """One rule's live state. For a trailing stop `trigger_price` is where the stop is now."""

    strategy: str
    trigger_type: str
    trigger_price: Decimal
    transaction_type: str  # the child order's side
    status: str
    trailing_gap: Decimal | None = None
    market_protection: int | None = None
    order_id: str | None = None
    message: str | None = None
    updated_at: datetime | None = None
    gtt: Gtt | None = field(default=None, repr=False)
    # Where the price index holds it: (ladder, key), for removal.
    fire_slot: tuple[Ladder, Decimal] | None = field(default=None, repr=False)
    trail_slot: tuple[Ladder, Decimal] | None = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        """Whether the sandbox still works on this rule: it is waiting (domain/rule_status.py), or
        it fired and its LIMIT child rests (OPEN) until a tick reaches it. Such a GTT can still
        be cancelled, modified and expire here, as at Upstox."""
        return phase(self.status) is Phase.WAITING or self.status == OPEN

    def state(self) -> RuleState:
        return RuleState(
            strategy=self.strategy, trigger_type=self.trigger_type, trigger_price=self.trigger_price,
            transaction_type=self.transaction_type, status=self.status, message=self.message,
            order_id=self.order_id, trailing_gap=self.trailing_gap,
        )


@dataclass(eq=False)
class Gtt:
    gtt_id: str
    type: str
    instrument_key: str
    transaction_type: str  # the ENTRY side
    product: str
    quantity: int
    rules: list[Rule]
    created_at: datetime
    expires_at: datetime
    trading_symbol: str = ""
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        for rule in self.rules:
            rule.gtt = self

    def rule(self, strategy: str) -> Rule | None:
        for rule in self.rules:
            if rule.strategy == strategy:
                return rule
        return None

    @property
    def live(self) -> bool:
        """Any rule is live (see `Rule.live`): the GTT is still the sandbox's to work on."""
        return any(rule.live for rule in self.rules)

    def to_broker(self) -> BrokerGtt:
        return BrokerGtt(
            gtt_id=self.gtt_id, type=self.type, instrument_key=self.instrument_key,
            segment=self.instrument_key.partition("|")[0], trading_symbol=self.trading_symbol,
            quantity=self.quantity, product=self.product, rules=tuple(rule.state() for rule in self.rules),
            created_at=self.created_at, expires_at=self.expires_at, updated_at=self.updated_at,
        )


def new_rules(request: GttRequest) -> list[Rule]:
    """Rules as placed: ENTRY SCHEDULED, exits (on the other side) INACTIVE until the ENTRY fills."""
    exit_side = SELL if request.transaction_type == BUY else BUY
    rules = []
    for rule in request.rules:
        entry = rule.strategy == ENTRY
        gap = None if rule.trailing_gap is None else to_decimal(rule.trailing_gap, "trailing_gap")
        rules.append(Rule(
            strategy=rule.strategy, trigger_type=rule.trigger_type,
            trigger_price=to_decimal(rule.trigger_price, "trigger_price"),
            transaction_type=request.transaction_type if entry else exit_side,
            status=SCHEDULED if entry else INACTIVE, trailing_gap=gap,
            market_protection=rule.market_protection,
        ))
    return rules


@dataclass
class Changes:
    """What changed since the last `TriggerEngine.take_changes()`: what storage must write."""

    placed: set[str] = field(default_factory=set)  # new GTTs: write whole
    replaced: set[str] = field(default_factory=set)  # modified GTTs: rewrite whole
    touched: dict[str, dict[str, str]] = field(default_factory=dict)  # gtt_id -> {strategy: status before}
    fires: list[FiredEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.placed or self.replaced or self.touched or self.fires)
