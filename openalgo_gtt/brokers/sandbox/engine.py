"""The sandbox's trigger engine: Upstox GTT rules simulated in memory. No database, no Flask.

What it models (see the reference notes on GTT v3):
- a SINGLE GTT is one ENTRY rule; ABOVE fires when the last price rises to the trigger
  (ltp >= trigger), BELOW when it falls to it (ltp <= trigger);
- an IMMEDIATE ENTRY sends its child order at once: a LIMIT at the trigger price, which fills
  at once when the last price already allows it (BUY: ltp <= price, SELL: ltp >= price) and
  otherwise rests (status OPEN) until a tick reaches it;
- a MULTIPLE GTT (bracket) is ENTRY plus TARGET and/or STOPLOSS; the exits sit INACTIVE until
  the ENTRY has filled, then both are armed (SCHEDULED). TARGET fires on the profitable side
  (BUY entry: ltp >= target; SELL: ltp <= target), STOPLOSS on the losing side; when one fires
  the other is CANCELLED;
- a STOPLOSS with a `trailing_gap` follows the price once armed (BUY entry:
  stop = max(stop, ltp - gap); SELL: stop = min(stop, ltp + gap)) and fires on the way back;
- a fired rule's child order fills as a LIMIT at the trigger price (the stop's position for a
  trailing stop): the rule goes TRIGGERED -> COMPLETED with an order id, and a fill is reported;
- intraday (I) GTTs expire at 23:59:59 IST of the day placed, delivery (D, MTF) a year later.
- ticks decide: placing never fires an ABOVE/BELOW rule, the next tick does. A rule fires at
  most once.

The index. For each instrument a `_Book` holds sorted price ladders (`bisect`):
  up     rules that fire when ltp >= price, ascending by price;
  down   rules that fire when ltp <= price, ascending by -price (descending by price);
  trail_up / trail_down  trailing stops, by the price at which they next move.
A tick takes the prefix of each ladder it crosses, so it costs about the number of rules it
fires or moves, not the number that exist.

Every change made since the last `take_changes()` is journaled (new and replaced GTTs, the status
each touched rule had before, fills), so a persistence layer writes only what changed.
"""
from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterable, Iterator

from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, CANCELLED, COMPLETED, ENTRY, EXPIRED, IMMEDIATE, INACTIVE,
    LIVE_RULE_STATUSES, MULTIPLE, OPEN, PRODUCT_DELIVERY, PRODUCT_INTRADAY, PRODUCT_MTF, SCHEDULED,
    SELL, SINGLE, STOPLOSS, TARGET, BrokerGtt, GttRequest, Quote, RuleState,
)
from openalgo_gtt.brokers.errors import InputRejected
from openalgo_gtt.domain.clock import IST, as_utc

__all__ = [
    "Tick", "FiredEvent", "Rule", "Gtt", "Changes", "TriggerEngine", "QuoteBook", "QuoteState",
    "validate_request", "expiry_for", "rejected", "CODE_INVALID", "CODE_NOT_FOUND", "CODE_NOT_LIVE",
    "CODE_ID_MISSING", "CODE_ID_FORMAT",
]

# Error codes. Upstox documents UDAPI1134/UDAPI1135 for a missing / malformed gtt_order_id; it
# documents no code for the other cases, so the sandbox uses its own.
CODE_INVALID = "SANDBOX-INVALID-INPUT"
CODE_NOT_FOUND = "SANDBOX-GTT-NOT-FOUND"
CODE_NOT_LIVE = "SANDBOX-GTT-NOT-LIVE"
CODE_ID_MISSING = "UDAPI1134"
CODE_ID_FORMAT = "UDAPI1135"

_STRATEGIES = (ENTRY, TARGET, STOPLOSS)
_PRODUCTS = (PRODUCT_INTRADAY, PRODUCT_DELIVERY, PRODUCT_MTF)
_ENTRY_TRIGGERS = (ABOVE, BELOW, IMMEDIATE)
_FIREABLE = (SCHEDULED, OPEN)  # the statuses a rule is indexed in
_END_OF_DAY = time(23, 59, 59)


def rejected(message: str, code: str = CODE_INVALID, http_status: int = 400) -> InputRejected:
    return InputRejected(message, code=code, http_status=http_status, may_have_reached=False)


# --- values crossing the engine ------------------------------------------------------------------


def _to_decimal(value, name: str) -> Decimal:
    if isinstance(value, bool):
        raise rejected(f"{name} must be a number (got {value!r})")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise rejected(f"{name} must be a number (got {value!r})") from None
    if not number.is_finite():
        raise rejected(f"{name} must be a finite number (got {value!r})")
    return number


@dataclass(frozen=True)
class Tick:
    """One price update. `open` overrides the day's open; `at` defaults to the broker's clock."""

    instrument_key: str
    ltp: Decimal
    open: Decimal | None = None
    at: datetime | None = None

    def checked(self) -> "Tick":
        """This tick with exact, validated values, or InputRejected."""
        if not isinstance(self.instrument_key, str) or not self.instrument_key.strip():
            raise rejected(f"a tick needs an instrument_key (got {self.instrument_key!r})")
        ltp = _to_decimal(self.ltp, "ltp")
        if ltp <= 0:
            raise rejected(f"ltp must be positive (got {self.ltp!r})")
        day_open = None
        if self.open is not None:
            day_open = _to_decimal(self.open, "open")
            if day_open <= 0:
                raise rejected(f"open must be positive (got {self.open!r})")
        if self.at is not None and not isinstance(self.at, datetime):
            raise rejected(f"at must be a datetime (got {self.at!r})")
        return Tick(self.instrument_key.strip(), ltp, day_open, as_utc(self.at))


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


# --- validation (the same rules Upstox applies) -----------------------------------------------


def validate_request(request: GttRequest) -> None:
    """Raise InputRejected unless `request` is a GTT Upstox would accept."""
    if request.type not in (SINGLE, MULTIPLE):
        raise rejected(f"type must be SINGLE or MULTIPLE (got {request.type!r})")
    key = request.instrument_key
    if not isinstance(key, str) or "|" not in key or not key.partition("|")[2]:
        raise rejected(f"instrument_token must look like SEGMENT|ID (got {key!r})")
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
        price = _to_decimal(rule.trigger_price, f"{rule.strategy} trigger_price")
        if price <= 0:
            raise rejected(f"the {rule.strategy} trigger_price must be positive (got {rule.trigger_price!r})")
        if rule.trailing_gap is not None:
            if rule.strategy != STOPLOSS:
                raise rejected(f"trailing_gap is allowed on the STOPLOSS rule only (got it on {rule.strategy})")
            gap = _to_decimal(rule.trailing_gap, "trailing_gap")
            if gap <= 0:
                raise rejected(f"trailing_gap must be positive (got {rule.trailing_gap!r})")
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
    gtt: "Gtt | None" = field(default=None, repr=False)
    # Where the index holds it: (ladder, key), for removal.
    fire_slot: "tuple[_Ladder, Decimal] | None" = field(default=None, repr=False)
    trail_slot: "tuple[_Ladder, Decimal] | None" = field(default=None, repr=False)

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
        return any(rule.status in LIVE_RULE_STATUSES for rule in self.rules)

    def to_broker(self) -> BrokerGtt:
        return BrokerGtt(
            gtt_id=self.gtt_id, type=self.type, instrument_key=self.instrument_key,
            segment=self.instrument_key.partition("|")[0], trading_symbol=self.trading_symbol,
            quantity=self.quantity, product=self.product, rules=tuple(rule.state() for rule in self.rules),
            created_at=self.created_at, expires_at=self.expires_at,
        )


def _opposite(side: str) -> str:
    return SELL if side == BUY else BUY


def _new_rules(request: GttRequest) -> list[Rule]:
    """Rules as placed: ENTRY SCHEDULED, exits INACTIVE until the ENTRY fills."""
    exit_side = _opposite(request.transaction_type)
    rules = []
    for rule in request.rules:
        entry = rule.strategy == ENTRY
        gap = None if rule.trailing_gap is None else _to_decimal(rule.trailing_gap, "trailing_gap")
        rules.append(Rule(
            strategy=rule.strategy, trigger_type=rule.trigger_type,
            trigger_price=_to_decimal(rule.trigger_price, "trigger_price"),
            transaction_type=request.transaction_type if entry else exit_side,
            status=SCHEDULED if entry else INACTIVE, trailing_gap=gap,
            market_protection=rule.market_protection,
        ))
    return rules


# --- the index ---------------------------------------------------------------------------------


class _Ladder:
    """Rules sorted by key. `take(limit)` removes and returns, in key order, every rule whose key
    is <= limit (< limit when strict)."""

    __slots__ = ("keys", "rules")

    def __init__(self) -> None:
        self.keys: list[Decimal] = []
        self.rules: list[Rule] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: Decimal, rule: Rule) -> None:
        at = bisect_right(self.keys, key)
        self.keys.insert(at, key)
        self.rules.insert(at, rule)

    def remove(self, key: Decimal, rule: Rule) -> None:
        keys, rules = self.keys, self.rules
        for at in range(bisect_left(keys, key), bisect_right(keys, key)):
            if rules[at] is rule:
                del keys[at]
                del rules[at]
                return

    def take(self, limit: Decimal, strict: bool = False) -> list[Rule]:
        keys = self.keys
        if not keys or keys[0] > limit or (strict and keys[0] == limit):
            return []
        count = bisect_left(keys, limit) if strict else bisect_right(keys, limit)
        taken = self.rules[:count]
        del keys[:count]
        del self.rules[:count]
        return taken


class _Book:
    __slots__ = ("up", "down", "trail_up", "trail_down")

    def __init__(self) -> None:
        self.up = _Ladder()  # fires when ltp >= key
        self.down = _Ladder()  # key = -price: fires when ltp <= price
        self.trail_up = _Ladder()  # BUY-entry stops, key = stop + gap: move when ltp > key
        self.trail_down = _Ladder()  # SELL-entry stops, key = gap - stop: move when ltp < stop - gap


def _fires_rising(rule: Rule) -> bool:
    """True when the rule fires as the price rises to it (ltp >= price), False as it falls."""
    if rule.strategy == ENTRY:
        if rule.status == OPEN:  # a resting LIMIT child: a BUY fills at or below, a SELL at or above
            return rule.transaction_type == SELL
        return rule.trigger_type == ABOVE
    buy_entry = rule.gtt.transaction_type == BUY
    return buy_entry if rule.strategy == TARGET else not buy_entry


@dataclass
class Changes:
    """What changed since the last `take_changes()`."""

    placed: set[str] = field(default_factory=set)  # new GTTs: write whole
    replaced: set[str] = field(default_factory=set)  # modified GTTs: rewrite whole
    touched: dict[str, dict[str, str]] = field(default_factory=dict)  # gtt_id -> {strategy: status before}
    fires: list[FiredEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.placed or self.replaced or self.touched or self.fires)


OrderIds = Callable[[datetime], str]


class TriggerEngine:
    """Every GTT the sandbox knows, with its live rules indexed by instrument and price.

    `order_ids(at)` names each child order; the caller may swap it (the broker hands out ids
    from a database counter). Not thread-safe: the caller serialises access.
    """

    def __init__(self, order_ids: OrderIds) -> None:
        self.order_ids = order_ids
        self._gtts: dict[str, Gtt] = {}
        self._books: dict[str, _Book] = {}
        self._expiry: list[tuple[datetime, int, Gtt]] = []  # heap; stale entries skipped lazily
        self._seq = itertools.count()
        self._changes = Changes()

    # ----- reading -----------------------------------------------------------------------------

    def get(self, gtt_id: str) -> Gtt | None:
        return self._gtts.get(gtt_id)

    def gtts(self) -> Iterator[Gtt]:
        return iter(self._gtts.values())

    def __len__(self) -> int:
        return len(self._gtts)

    def indexed_rules(self) -> int:
        """How many rules can fire on a tick now (those in the price ladders)."""
        return sum(len(book.up) + len(book.down) for book in self._books.values())

    def take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    # ----- commands ----------------------------------------------------------------------------

    def place(self, gtt_id: str, request: GttRequest, *, ltp: Decimal, at: datetime,
              expires_at: datetime | None = None, trading_symbol: str = "") -> Gtt:
        """Add a new GTT. An IMMEDIATE ENTRY sends its order now, filling at once if `ltp` allows."""
        validate_request(request)
        if gtt_id in self._gtts:
            raise ValueError(f"duplicate GTT id {gtt_id}")
        gtt = Gtt(
            gtt_id=gtt_id, type=request.type, instrument_key=request.instrument_key,
            transaction_type=request.transaction_type, product=request.product, quantity=request.quantity,
            rules=_new_rules(request), created_at=at,
            expires_at=expires_at or expiry_for(request.product, at), trading_symbol=trading_symbol,
            updated_at=at,
        )
        for rule in gtt.rules:
            rule.updated_at = at
        self._gtts[gtt_id] = gtt
        heapq.heappush(self._expiry, (gtt.expires_at, next(self._seq), gtt))
        self._changes.placed.add(gtt_id)
        self._start(gtt, ltp, at)
        return gtt

    def modify(self, gtt_id: str, request: GttRequest, *, ltp: Decimal, at: datetime) -> Gtt:
        """Replace quantity and rules (instrument, product and side never change).

        Before the ENTRY has been sent everything is replaced as if placed anew. Once it has
        (OPEN or COMPLETED) the quantity and type are fixed and only the exits are replaced;
        the ENTRY rule of the request is then ignored.
        """
        gtt = self.live_gtt(gtt_id)
        validate_request(request)
        entry = gtt.rule(ENTRY)
        sent = entry is not None and entry.status != SCHEDULED
        if sent:
            if request.quantity != gtt.quantity:
                raise rejected("the quantity cannot be modified once the ENTRY order has been placed")
            if request.type != gtt.type:
                raise rejected("the type cannot be modified once the ENTRY order has been placed")
        new_rules = _new_rules(GttRequest(
            type=request.type, instrument_key=gtt.instrument_key, transaction_type=gtt.transaction_type,
            product=gtt.product, quantity=request.quantity, rules=request.rules,
        ))
        for rule in gtt.rules:
            self._unindex(rule)
        if sent:
            armed = entry.status == COMPLETED
            exits = [rule for rule in new_rules if rule.strategy != ENTRY]
            for rule in exits:
                rule.status = SCHEDULED if armed else INACTIVE
            gtt.rules = [entry, *exits]
        else:
            gtt.type, gtt.quantity, gtt.rules = request.type, request.quantity, new_rules
        for rule in gtt.rules:
            if not (sent and rule is entry):  # a sent ENTRY keeps its state and its time
                rule.gtt = gtt
                rule.updated_at = at
        gtt.updated_at = at
        self._changes.replaced.add(gtt_id)
        self._changes.touched.pop(gtt_id, None)
        if sent:
            for rule in gtt.rules:
                if rule.status in _FIREABLE:
                    self._index(rule)
        else:
            self._start(gtt, ltp, at)
        return gtt

    def cancel(self, gtt_id: str, at: datetime) -> Gtt:
        gtt = self.live_gtt(gtt_id)
        for rule in gtt.rules:
            if rule.status in LIVE_RULE_STATUSES:
                self._set(rule, CANCELLED, at, "cancelled by the user")
        gtt.updated_at = at
        return gtt

    def live_gtt(self, gtt_id: str) -> Gtt:
        gtt = self._gtts.get(gtt_id)
        if gtt is None:
            raise rejected(f"GTT {gtt_id} not found", CODE_NOT_FOUND, 404)
        if not gtt.live:
            raise rejected(f"GTT {gtt_id} can no longer be modified or cancelled: it is "
                           f"{'/'.join(sorted({rule.status for rule in gtt.rules}))}", CODE_NOT_LIVE)
        return gtt

    def expiry_due(self, now: datetime) -> bool:
        return bool(self._expiry) and self._expiry[0][0] < now

    def expire(self, now: datetime) -> list[Gtt]:
        """Expire every GTT whose validity ended before `now`; returns those that changed."""
        expired = []
        heap = self._expiry
        while heap and heap[0][0] < now:
            expires_at, _, gtt = heapq.heappop(heap)
            if self._gtts.get(gtt.gtt_id) is not gtt or gtt.expires_at != expires_at or not gtt.live:
                continue
            for rule in gtt.rules:
                if rule.status in LIVE_RULE_STATUSES:
                    self._set(rule, EXPIRED, now, "the GTT expired")
            gtt.updated_at = now
            expired.append(gtt)
        return expired

    def tick(self, instrument_key: str, ltp: Decimal, at: datetime) -> list[FiredEvent]:
        """Apply one last price to the instrument's rules; returns the fills, in firing order."""
        book = self._books.get(instrument_key)
        if book is None:
            return []
        fired: list[FiredEvent] = []
        neg = -ltp
        while True:  # an ENTRY fill arms exits that this same price may already reach
            taken = book.up.take(ltp) + book.down.take(neg)
            if not taken:
                break
            for rule in taken:
                rule.fire_slot = None
            for rule in taken:
                if rule.status in _FIREABLE:  # a sibling fired earlier in this pass cancels it
                    self._fill(rule, ltp, at, fired)
        if book.trail_up.keys:
            for rule in book.trail_up.take(ltp, strict=True):
                rule.trail_slot = None
                self._move_stop(rule, ltp - rule.trailing_gap, at)
        if book.trail_down.keys:
            for rule in book.trail_down.take(neg, strict=True):
                rule.trail_slot = None
                self._move_stop(rule, ltp + rule.trailing_gap, at)
        return fired

    # ----- restoring ---------------------------------------------------------------------------

    def load(self, gtt: Gtt) -> None:
        """Add (or replace) a GTT exactly as stored, indexing its live rules."""
        self.drop(gtt.gtt_id)
        for rule in gtt.rules:
            rule.gtt = gtt
            rule.fire_slot = rule.trail_slot = None
        self._gtts[gtt.gtt_id] = gtt
        if gtt.live:
            heapq.heappush(self._expiry, (gtt.expires_at, next(self._seq), gtt))
            for rule in gtt.rules:
                if rule.status in _FIREABLE:
                    self._index(rule)

    def drop(self, gtt_id: str) -> None:
        gtt = self._gtts.pop(gtt_id, None)
        if gtt is not None:
            for rule in gtt.rules:
                self._unindex(rule)

    # ----- internals ---------------------------------------------------------------------------

    def _start(self, gtt: Gtt, ltp: Decimal, at: datetime) -> None:
        """Index a (re)placed GTT; an IMMEDIATE ENTRY sends its LIMIT child now."""
        entry = gtt.rule(ENTRY)
        if entry.trigger_type == IMMEDIATE:
            # TRIGGERED: the child order exists now; it fills when the price allows.
            entry.order_id = self.order_ids(at)
            entry.status = OPEN
            marketable = ltp <= entry.trigger_price if entry.transaction_type == BUY else ltp >= entry.trigger_price
            if marketable:
                self._fill(entry, ltp, at, [])
                return
        self._index(entry)

    def _touch(self, rule: Rule) -> None:
        gtt_id = rule.gtt.gtt_id
        changes = self._changes
        if gtt_id in changes.placed or gtt_id in changes.replaced:
            return  # written whole anyway
        changes.touched.setdefault(gtt_id, {}).setdefault(rule.strategy, rule.status)

    def _set(self, rule: Rule, status: str, at: datetime, message: str | None = None) -> None:
        self._touch(rule)
        self._unindex(rule)
        rule.status = status
        rule.message = message
        rule.updated_at = at

    def _fill(self, rule: Rule, ltp: Decimal, at: datetime, fired: list[FiredEvent]) -> None:
        self._touch(rule)
        self._unindex(rule)
        gtt = rule.gtt
        if rule.order_id is None:
            rule.order_id = self.order_ids(at)
        rule.status = COMPLETED  # TRIGGERED, then its LIMIT child filled at the trigger price
        rule.message = None
        rule.updated_at = at
        gtt.updated_at = at
        event = FiredEvent(
            gtt_id=gtt.gtt_id, instrument_key=gtt.instrument_key, strategy=rule.strategy,
            trigger_type=rule.trigger_type, transaction_type=rule.transaction_type, quantity=gtt.quantity,
            price=rule.trigger_price, ltp=ltp, order_id=rule.order_id, at=at,
        )
        fired.append(event)
        self._changes.fires.append(event)
        if rule.strategy == ENTRY:
            for other in gtt.rules:
                if other.status == INACTIVE:
                    self._touch(other)
                    other.status = SCHEDULED
                    other.updated_at = at
                    self._index(other)
        else:
            for other in gtt.rules:
                if other is not rule and other.status in LIVE_RULE_STATUSES:
                    self._set(other, CANCELLED, at, f"cancelled: the {rule.strategy} rule filled")

    def _move_stop(self, rule: Rule, stop: Decimal, at: datetime) -> None:
        self._touch(rule)
        self._unindex(rule)
        rule.trigger_price = stop
        rule.updated_at = at
        self._index(rule)

    def _book(self, instrument_key: str) -> _Book:
        book = self._books.get(instrument_key)
        if book is None:
            book = self._books[instrument_key] = _Book()
        return book

    def _index(self, rule: Rule) -> None:
        book = self._book(rule.gtt.instrument_key)
        price = rule.trigger_price
        if _fires_rising(rule):
            ladder, key = book.up, price
        else:
            ladder, key = book.down, -price
        ladder.add(key, rule)
        rule.fire_slot = (ladder, key)
        if rule.strategy == STOPLOSS and rule.trailing_gap is not None and rule.status == SCHEDULED:
            if rule.gtt.transaction_type == BUY:  # the stop rises: it moves once ltp > stop + gap
                ladder, key = book.trail_up, price + rule.trailing_gap
            else:  # the stop falls: it moves once ltp < stop - gap
                ladder, key = book.trail_down, rule.trailing_gap - price
            ladder.add(key, rule)
            rule.trail_slot = (ladder, key)

    def _unindex(self, rule: Rule) -> None:
        if rule.fire_slot is not None:
            ladder, key = rule.fire_slot
            ladder.remove(key, rule)
            rule.fire_slot = None
        if rule.trail_slot is not None:
            ladder, key = rule.trail_slot
            ladder.remove(key, rule)
            rule.trail_slot = None


# --- quotes ------------------------------------------------------------------------------------


@dataclass(slots=True)
class QuoteState:
    last_price: Decimal
    open: Decimal
    day: date  # the IST day `open` belongs to
    at: datetime


class QuoteBook:
    """Last price and day open per instrument, from ticks. The first tick of a later IST day
    sets that day's open, unless the tick carries its own `open`."""

    def __init__(self) -> None:
        self._quotes: dict[str, QuoteState] = {}
        self.changed: set[str] = set()

    def get(self, instrument_key: str) -> QuoteState | None:
        return self._quotes.get(instrument_key)

    def put(self, instrument_key: str, state: QuoteState) -> None:
        self._quotes[instrument_key] = state

    def update(self, instrument_key: str, ltp: Decimal, day_open: Decimal | None, at: datetime) -> QuoteState:
        day = at.astimezone(IST).date()
        quote = self._quotes.get(instrument_key)
        if quote is None:
            quote = self._quotes[instrument_key] = QuoteState(ltp, day_open or ltp, day, at)
        else:
            quote.last_price = ltp
            quote.at = at
            if day > quote.day:
                quote.open, quote.day = day_open or ltp, day
            elif day_open is not None and day == quote.day:
                quote.open = day_open
        self.changed.add(instrument_key)
        return quote

    def quotes(self, instrument_keys: Iterable[str]) -> dict[str, Quote]:
        out = {}
        for key in instrument_keys:
            quote = self._quotes.get(key)
            if quote is not None:
                out[key] = Quote(key, quote.last_price, quote.open)
        return out
