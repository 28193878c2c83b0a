"""GTT rules of the gateway: OpenAlgo's request -> an Upstox GTT, and an Upstox GTT -> OpenAlgo's
order book entry. Pure functions: no I/O, no clock.

Upstox facts that shape this module (see the reference notes):
- a fired rule places a LIMIT order *at the trigger price*; there is no separate limit price and
  no MARKET child (a MARKET request becomes `market_protection` on the rule);
- every GTT needs an ENTRY rule; SINGLE = one ENTRY rule (ABOVE or BELOW), MULTIPLE = ENTRY plus
  TARGET and STOPLOSS (IMMEDIATE), the exits on the opposite side;
- modify replaces quantity and rules only: instrument, product and side are fixed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Mapping, Protocol

from openalgo_gtt.domain.clock import as_utc, ist_text as format_ist
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, CANCELLED, COMPLETED, ENTRY, EXPIRED, FAILED, IMMEDIATE, INACTIVE, MULTIPLE, NATIVE_OCO, OPEN,
    PRODUCT_DELIVERY, PRODUCT_INTRADAY, PRODUCT_MTF, SELL, SINGLE, STOPLOSS, TARGET, TRIGGERED, UPSTOX_FEATURES,
    BrokerFeatures, BrokerGtt, GttRequest, GttRule, TriggerKind, TriggerStatus,
)
from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.prices import on_tick, round_to_tick
from openalgo_gtt.domain.strategy import (
    AUTO, DEFAULT_PCTS, BracketPcts, BracketPrices, bracket_prices,
)

__all__ = [
    "BRACKET", "OCO", "DEFAULT_MARKET_PROTECTION", "InstrumentLike", "PlaceIntent", "Plan",
    "BracketPcts", "BracketPrices", "bracket_prices", "upstox_product", "broker_product", "caller_product",
    "plan_single", "plan_bracket", "check_modify_allowed", "gtt_status",
    "book_entry", "format_ist", "last_change",
]

# The caller's trigger types (OpenAlgo's SINGLE and OCO, plus this gateway's BRACKET).
BRACKET = "BRACKET"
OCO = "OCO"
LIMIT = "LIMIT"
MARKET = "MARKET"


DEFAULT_MARKET_PROTECTION = 5  # percent

ROLE = {ENTRY: "entry", TARGET: "target", STOPLOSS: "stoploss"}
_ROLE_ORDER = {ENTRY: 0, TARGET: 1, STOPLOSS: 2}

_TO_UPSTOX_PRODUCT = {"CNC": PRODUCT_DELIVERY, "NRML": PRODUCT_DELIVERY, "MIS": PRODUCT_INTRADAY, "MTF": PRODUCT_MTF}


class InstrumentLike(Protocol):
    """What the planner needs of an instrument (`domain.symbols.InstrumentInfo` fits)."""

    instrument_key: str
    segment: str
    symbol: str  # OpenAlgo's: what messages name, never the broker's key
    exchange: str
    lot_size: int
    tick_size: Decimal  # rupees

    @property
    def is_derivative(self) -> bool: ...


def _name(instrument: InstrumentLike) -> str:
    """An instrument as the caller named it: "IDEA on NSE"."""
    return f"{instrument.symbol} on {instrument.exchange}"


# --- products ---------------------------------------------------------------------------------

def upstox_product(openalgo_product: str) -> str:
    """CNC and NRML -> D (delivery / carry-forward), MIS -> I, MTF -> MTF."""
    label = str(openalgo_product or "").strip().upper()
    try:
        return _TO_UPSTOX_PRODUCT[label]
    except KeyError:
        raise DomainError(f"product must be one of CNC, NRML, MIS, MTF (got {openalgo_product!r})") from None


def broker_product(openalgo_product: str, features: BrokerFeatures) -> str:
    """The broker's product code for an OpenAlgo label, or a refusal naming what it takes."""
    label = str(openalgo_product or "").strip().upper()
    code = features.product(label)
    if code is None:
        if features is UPSTOX_FEATURES:
            return upstox_product(label)  # its own message
        allowed = ", ".join(name for name, _ in features.products)
        raise DomainError(f"product {label or openalgo_product!r} is not available for GTTs on {features.name} "
                          f"(use {allowed})", details={"product": openalgo_product})
    return code


def caller_product(upstox_product: str, is_derivative: bool) -> str:
    """The OpenAlgo label for a GTT placed elsewhere: D -> CNC (equity) / NRML (derivative),
    I -> MIS, MTF -> MTF. An unknown code passes through unchanged: the order book shows what the
    broker said rather than failing on one odd entry."""
    code = str(upstox_product or "").strip().upper()
    if code == PRODUCT_DELIVERY:
        return "NRML" if is_derivative else "CNC"
    if code == PRODUCT_INTRADAY:
        return "MIS"
    if code == PRODUCT_MTF:
        return "MTF"
    return str(upstox_product)


# --- the request ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlaceIntent:
    """A place/modify request after parsing and type coercion (the API layer fills it)."""

    trigger_type: str  # SINGLE | BRACKET | OCO
    action: str  # BUY | SELL
    product: str  # CNC | NRML | MIS | MTF
    quantity: int
    pricetype: str = LIMIT  # LIMIT | MARKET
    price: Decimal = Decimal(0)
    triggerprice_sl: Decimal = Decimal(0)
    triggerprice_tg: Decimal = Decimal(0)
    stoploss: Decimal | None = None
    target: Decimal | None = None
    entry_mode: str = AUTO  # auto | manual | percent
    entry_value: Decimal | None = None
    target_type: str = AUTO
    target_value: Decimal | None = None
    sl_type: str = AUTO
    sl_value: Decimal | None = None
    trailing_gap: Decimal | None = None
    market_protection: int | None = None


@dataclass(frozen=True)
class Plan:
    """What to send to the broker, what to tell the caller, and what to record."""

    request: GttRequest
    warnings: tuple[str, ...] = ()
    prices: dict[str, Decimal] = field(default_factory=dict)  # entry (+ target, stoploss)
    legs: tuple[dict[str, Any], ...] = ()


# --- shared checks ----------------------------------------------------------------------------

def _upper(value: Any) -> str:
    return str(value or "").strip().upper()


def _action(intent: PlaceIntent) -> str:
    action = _upper(intent.action)
    if action not in (BUY, SELL):
        raise DomainError(f"action must be BUY or SELL (got {intent.action!r})")
    return action


def _opposite(action: str) -> str:
    return SELL if action == BUY else BUY


def _pricetype(intent: PlaceIntent) -> str:
    pricetype = _upper(intent.pricetype) or LIMIT
    if pricetype not in (LIMIT, MARKET):
        raise DomainError(f"pricetype must be LIMIT or MARKET (got {intent.pricetype!r})")
    return pricetype


def _check_quantity(quantity: Any, instrument: InstrumentLike) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise DomainError(f"quantity must be a positive whole number (got {quantity!r})")
    lot = int(instrument.lot_size or 1)
    if instrument.is_derivative and lot > 1 and quantity % lot:
        raise DomainError(
            f"quantity {quantity} is not a multiple of the lot size {lot} of {_name(instrument)}",
            details={"quantity": quantity, "lot_size": lot},
        )
    return quantity


def _tick(instrument: InstrumentLike) -> Decimal:
    if str(instrument.segment).endswith("_INDEX"):
        raise DomainError(f"{_name(instrument)} is an index: indices cannot be traded, "
                          "use its future or options")
    tick = instrument.tick_size
    if tick is None or Decimal(tick) <= 0:
        # Indices (and broken master rows) have no tick: nothing can be ordered on them.
        raise DomainError(f"{_name(instrument)} has no tick size: it cannot be traded")
    return Decimal(tick)


def _on_tick_or_warn(value: Decimal, tick: Decimal, name: str, warnings: list[str]) -> Decimal:
    rounded = round_to_tick(value, tick)
    if not on_tick(value, tick):
        warnings.append(f"{name} {value} is not a multiple of the tick size {tick}; rounded to {rounded}")
    if rounded <= 0:
        raise DomainError(f"{name} {value} rounds to {rounded} at the tick size {tick}; it must be positive")
    return rounded


def _market_protection(intent: PlaceIntent, pricetype: str, default: int, warnings: list[str],
                       features: BrokerFeatures = UPSTOX_FEATURES) -> int | None:
    if pricetype != MARKET:
        if intent.market_protection is not None:
            warnings.append("market_protection is ignored for a LIMIT pricetype")
        return None
    value = default if intent.market_protection is None else intent.market_protection
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise DomainError(f"market_protection must be a whole percentage from 0 to 100 (got {value!r})")
    if features.limit_price:
        return value  # the caller of this turns it into a protective LIMIT price, and says so
    warnings.append(
        "Upstox has no MARKET child order: it will be a LIMIT order protected by "
        f"market_protection {value}%"
    )
    return value


def _child_price(intent: PlaceIntent, action: str, pricetype: str, trigger: Decimal, tick: Decimal,
                 protection: int | None, features: BrokerFeatures, warnings: list[str]) -> Decimal | None:
    """The child order's LIMIT price on a broker that takes one (None elsewhere): `price`, or the
    trigger when it is 0 or absent; for MARKET, a protective limit `protection`% beyond the
    trigger (above it for a BUY, below for a SELL), since such brokers' GTTs are LIMIT only."""
    if not features.limit_price:
        return None
    if pricetype == MARKET:
        factor = Decimal(1) + (Decimal(protection or 0) / 100) * (1 if action == BUY else -1)
        limit = round_to_tick(trigger * factor, tick)
        if limit <= 0:
            raise DomainError(f"market_protection {protection}% leaves no positive limit price below {trigger}")
        warnings.append(f"{features.name} GTTs are LIMIT only: the MARKET child will be a LIMIT at {limit}, "
                        f"market_protection {protection}% beyond the trigger {trigger}")
        return limit
    price = intent.price or Decimal(0)
    if price < 0:
        raise DomainError("price must not be negative")
    return trigger if price == 0 else _on_tick_or_warn(price, tick, "price", warnings)


def _leg(role: str, action: str, trigger_type: str, trigger_price: Decimal, product: str, quantity: int,
         trailing_gap: Decimal | None = None, market_protection: int | None = None,
         price: Decimal | None = None) -> dict[str, Any]:
    # The child is always a LIMIT: at `price` where the broker takes one, else at the trigger.
    return {
        "role": role, "action": action, "trigger_type": trigger_type, "trigger_price": trigger_price,
        "price": trigger_price if price is None else price, "pricetype": LIMIT, "product": product, "quantity": quantity,
        "trailing_gap": trailing_gap, "market_protection": market_protection,
    }


def _basics(intent: PlaceIntent, instrument: InstrumentLike, trigger_type: str,
            features: BrokerFeatures = UPSTOX_FEATURES):
    """What every plan checks first: (action, pricetype, product, broker product, quantity, tick)."""
    if _upper(intent.trigger_type) != trigger_type:
        raise DomainError(f"this plan needs trigger_type {trigger_type} (got {intent.trigger_type!r})")
    product = _upper(intent.product)
    return (_action(intent), _pricetype(intent), product, broker_product(product, features),
            _check_quantity(intent.quantity, instrument), _tick(instrument))


# --- SINGLE -----------------------------------------------------------------------------------

def plan_single(intent: PlaceIntent, instrument: InstrumentLike, *,
                default_market_protection: int = DEFAULT_MARKET_PROTECTION,
                features: BrokerFeatures = UPSTOX_FEATURES) -> Plan:
    """One ENTRY rule: triggerprice_tg -> ABOVE, triggerprice_sl -> BELOW."""
    action, pricetype, product, code, quantity, tick = _basics(intent, instrument, SINGLE, features)
    warnings: list[str] = []

    tg, sl = intent.triggerprice_tg or Decimal(0), intent.triggerprice_sl or Decimal(0)
    if tg < 0 or sl < 0:
        raise DomainError("triggerprice_tg and triggerprice_sl must not be negative")
    if (tg > 0) == (sl > 0):
        raise DomainError(
            "a SINGLE GTT needs exactly one trigger: triggerprice_tg (fires when the price rises "
            "above it) or triggerprice_sl (fires when it falls below it); "
            + ("both were given, use OCO for two" if tg > 0 else "neither was given"),
            details={"triggerprice_tg": str(tg), "triggerprice_sl": str(sl)},
        )
    name, raw, direction = ("triggerprice_tg", tg, ABOVE) if tg > 0 else ("triggerprice_sl", sl, BELOW)
    trigger = _on_tick_or_warn(raw, tick, name, warnings)

    price = intent.price or Decimal(0)
    if pricetype == LIMIT and price > 0 and price != trigger and not features.limit_price:
        warnings.append(
            f"Upstox has no separate limit price: the child order will be a LIMIT at the trigger "
            f"price {trigger}, not at price {price}"
        )
    protection = _market_protection(intent, pricetype, default_market_protection, warnings, features)
    limit = _child_price(intent, action, pricetype, trigger, tick, protection, features, warnings)
    if features.limit_price:
        protection = None  # sent as the LIMIT price itself
    for ignored in ("stoploss", "target", "trailing_gap"):
        value = getattr(intent, ignored)
        if value is not None and value > 0:
            warnings.append(f"{ignored} is ignored for a SINGLE GTT")

    rule = GttRule(strategy=ENTRY, trigger_type=direction, trigger_price=trigger, market_protection=protection,
                   price=limit)
    request = GttRequest(type=SINGLE, instrument_key=instrument.instrument_key, transaction_type=action,
                         product=code, quantity=quantity, rules=(rule,))
    leg = _leg("entry", action, direction, trigger, product, quantity, market_protection=protection, price=limit)
    return Plan(request=request, warnings=tuple(warnings), prices={"entry": trigger}, legs=(leg,))


# --- BRACKET (Upstox MULTIPLE) ----------------------------------------------------------------

def plan_bracket(intent: PlaceIntent, instrument: InstrumentLike, open_price: Decimal | None,
                 last_price: Decimal | None, pcts: BracketPcts = DEFAULT_PCTS, *,
                 default_market_protection: int = DEFAULT_MARKET_PROTECTION,
                 features: BrokerFeatures = UPSTOX_FEATURES) -> Plan:
    """ENTRY (ABOVE/BELOW the last price), TARGET and STOPLOSS (IMMEDIATE, opposite side).

    On a broker with no native bracket (Kite) the request is the ENTRY alone, a SINGLE; the exits
    are in the plan's legs, and the gateway places them as one native OCO once the entry's order
    has filled (services/staged_bracket.py)."""
    action, pricetype, product, code, quantity, tick = _basics(intent, instrument, BRACKET, features)
    if intent.trailing_gap is not None and not features.trailing_stop:
        raise DomainError(f"trailing_gap has no {features.name} equivalent: {features.name}'s GTTs cannot trail "
                          "a stop-loss; leave it out", details={"trailing_gap": str(intent.trailing_gap)})
    if last_price is None or last_price <= 0:
        raise DomainError(f"no last price is available for {_name(instrument)}: "
                          "a bracket's entry direction cannot be decided")

    prices = bracket_prices(action, open_price, last_price, intent.entry_mode, intent.entry_value,
                            intent.target_type, intent.target_value, intent.sl_type, intent.sl_value,
                            tick, pcts)
    warnings = list(prices.warnings)

    gap = None
    if intent.trailing_gap is not None:
        gap = _on_tick_or_warn(intent.trailing_gap, tick, "trailing_gap", warnings)
        distance = abs(prices.entry - prices.stoploss)
        if gap >= distance:
            # Upstox's limits on the gap are undocumented: warn, let the broker decide.
            warnings.append(f"trailing_gap {gap} is not smaller than the entry-stoploss distance {distance}")

    protection = _market_protection(intent, pricetype, default_market_protection, warnings, features)
    for ignored in ("price", "triggerprice_sl", "triggerprice_tg", "stoploss", "target"):
        value = getattr(intent, ignored)
        if value is not None and value > 0:
            warnings.append(f"{ignored} is ignored for a BRACKET GTT (its prices come from the entry, "
                            "target and sl modes)")

    # ABOVE fires when the price rises to the entry, BELOW when it falls to it: pick the side the
    # entry is on now, or the GTT would fire at once (or never).
    direction = ABOVE if prices.entry >= last_price else BELOW
    exit_side = _opposite(action)
    if not features.native_bracket:
        return _staged_bracket(intent, instrument, action, pricetype, product, code, quantity, tick, direction,
                               prices, protection, features, warnings)
    rules = (
        GttRule(ENTRY, direction, prices.entry, market_protection=protection),
        GttRule(TARGET, IMMEDIATE, prices.target, market_protection=protection),
        GttRule(STOPLOSS, IMMEDIATE, prices.stoploss, trailing_gap=gap, market_protection=protection),
    )
    request = GttRequest(type=MULTIPLE, instrument_key=instrument.instrument_key, transaction_type=action,
                         product=code, quantity=quantity, rules=rules)
    legs = (
        _leg("entry", action, direction, prices.entry, product, quantity, market_protection=protection),
        _leg("target", exit_side, IMMEDIATE, prices.target, product, quantity, market_protection=protection),
        _leg("stoploss", exit_side, IMMEDIATE, prices.stoploss, product, quantity, trailing_gap=gap,
             market_protection=protection),
    )
    return Plan(request=request, warnings=tuple(warnings),
                prices={"entry": prices.entry, "target": prices.target, "stoploss": prices.stoploss},
                legs=legs)


def _staged_bracket(intent: PlaceIntent, instrument: InstrumentLike, action: str, pricetype: str, product: str,
                    code: str, quantity: int, tick: Decimal, direction: str, prices: BracketPrices,
                    protection: int | None, features: BrokerFeatures, warnings: list[str]) -> Plan:
    """A bracket on a broker without one: the entry as a SINGLE now, the exits (each a LIMIT at
    its trigger, or protected for MARKET) recorded in the legs for the gateway to place later."""
    exit_side = _opposite(action)
    plain = PlaceIntent(trigger_type=SINGLE, action=action, product=product, quantity=quantity, pricetype=pricetype)
    entry_price = _child_price(plain, action, pricetype, prices.entry, tick, protection, features, warnings)
    target_price = _child_price(plain, exit_side, pricetype, prices.target, tick, protection, features, warnings)
    stop_price = _child_price(plain, exit_side, pricetype, prices.stoploss, tick, protection, features, warnings)
    entry = GttRule(ENTRY, direction, prices.entry, price=entry_price)
    request = GttRequest(type=SINGLE, instrument_key=instrument.instrument_key, transaction_type=action,
                         product=code, quantity=quantity, rules=(entry,))
    # The exits' directions as the native OCO will hold them: the stop-loss is the lower leg of a
    # long, the target the lower leg of a short.
    target_dir, stop_dir = (ABOVE, BELOW) if action == BUY else (BELOW, ABOVE)
    legs = (
        _leg("entry", action, direction, prices.entry, product, quantity, price=entry_price),
        _leg("target", exit_side, target_dir, prices.target, product, quantity, price=target_price),
        _leg("stoploss", exit_side, stop_dir, prices.stoploss, product, quantity, price=stop_price),
    )
    warnings.append(f"{features.name} has no bracket GTT: the entry is placed now, and the target and stop-loss "
                    "as one OCO once the entry's order has filled")
    return Plan(request=request, warnings=tuple(warnings),
                prices={"entry": prices.entry, "target": prices.target, "stoploss": prices.stoploss}, legs=legs)


# --- modify -----------------------------------------------------------------------------------

_BOOK_LABEL = {SINGLE: TriggerKind.SINGLE, BRACKET: TriggerKind.BRACKET, MULTIPLE: TriggerKind.BRACKET,
               OCO: TriggerKind.TWO_LEG, "TWO-LEG": TriggerKind.TWO_LEG}


def _get(obj: Any, name: str) -> Any:
    """Read a field of a mapping or of an object (a stored row)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _product_code(label: Any) -> str:
    """An Upstox product code from an OpenAlgo label or from a code already."""
    value = _upper(label)
    return _TO_UPSTOX_PRODUCT.get(value, value)


def check_modify_allowed(existing: Any, intent: PlaceIntent, instrument: InstrumentLike) -> None:
    """Upstox's modify replaces only quantity and rules. Refuse any other change up front.
    Products compare as Upstox codes (CNC and NRML are both D: relabelling is not a change)."""
    changed = []
    if str(_get(existing, "instrument_key") or "") != instrument.instrument_key:
        changed.append("instrument")
    if _upper(_get(existing, "action")) != _upper(intent.action):
        changed.append("action")
    if _product_code(_get(existing, "product")) != upstox_product(intent.product):
        changed.append("product")
    old_type = _BOOK_LABEL.get(_upper(_get(existing, "trigger_type")), _upper(_get(existing, "trigger_type")))
    if old_type != _BOOK_LABEL.get(_upper(intent.trigger_type)):
        changed.append("trigger_type")
    if changed:
        raise DomainError("instrument, exchange, action, product and type cannot change: cancel and place again",
                          details={"changed": changed})


# --- order book -------------------------------------------------------------------------------

def gtt_status(gtt: BrokerGtt) -> TriggerStatus:
    """active | triggered | rejected | expired | cancelled.

    Live if any rule can still fire. Otherwise 'triggered' if anything fired; else the ENTRY
    rule's fate decides (the exits of a bracket are only cancelled *because* the entry expired or
    failed); else the worst rule's fate.
    """
    statuses = [rule.status for rule in gtt.rules]
    if gtt.can_fire:
        return TriggerStatus.ACTIVE
    if any(status in (TRIGGERED, OPEN, COMPLETED) for status in statuses):
        return TriggerStatus.TRIGGERED
    fate = {FAILED: TriggerStatus.REJECTED, EXPIRED: TriggerStatus.EXPIRED, CANCELLED: TriggerStatus.CANCELLED}
    entry = next((rule.status for rule in gtt.rules if rule.strategy == ENTRY), None)
    if entry in fate:
        return fate[entry]
    for status in (FAILED, EXPIRED, CANCELLED):
        if status in statuses:
            return fate[status]
    return TriggerStatus.CANCELLED  # no rules or unknown statuses: nothing left that can fire


def _book_trigger_type(gtt: BrokerGtt, recorded: Mapping[str, Any] | None) -> str:
    if recorded and recorded.get("trigger_type"):
        return str(recorded["trigger_type"])
    if gtt.type == NATIVE_OCO:
        return TriggerKind.TWO_LEG
    # A MULTIPLE placed elsewhere (3 rules, or ENTRY plus one exit) is shown as a bracket.
    return TriggerKind.SINGLE if gtt.type == SINGLE else TriggerKind.BRACKET


# A polled book shows the same few timestamps again and again; IST text depends on the instant
# alone, so the formatted text is kept.
_ist_text = lru_cache(maxsize=4096)(format_ist)


def last_change(*moments: datetime | None) -> datetime | None:
    """The latest of the known times a trigger changed (placed, modified, cancelled, fired at the
    broker): what `updated_at` shows. None when none is known."""
    known = [as_utc(moment) for moment in moments if moment is not None]
    return max(known) if known else None


def book_entry(gtt: BrokerGtt, *, symbol: str, exchange: str, last_price: Decimal | None,
               is_derivative: bool, recorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One OpenAlgo gttorderbook entry. Prices stay Decimal: the edge serialises them.

    `recorded` is the gateway's own record when it placed the GTT: trigger_id (what the caller
    holds), trigger_type, product (the caller's label), legs (each with role and product) and
    modified_at; the broker's data is the truth for prices and statuses.
    """
    recorded = recorded or {}
    default_product = recorded.get("product") or caller_product(gtt.product, is_derivative)
    leg_products = {leg.get("role"): leg.get("product") for leg in recorded.get("legs") or ()
                    if isinstance(leg, Mapping)}
    rules = sorted(gtt.rules, key=lambda rule: _ROLE_ORDER.get(rule.strategy, len(_ROLE_ORDER)))
    legs = []
    for rule in rules:
        role = ROLE.get(rule.strategy, str(rule.strategy).lower())
        legs.append({
            "action": rule.transaction_type,
            "quantity": gtt.quantity,
            # Upstox's child is a LIMIT at the trigger price; Kite's has its own.
            "price": rule.trigger_price if rule.price is None else rule.price,
            "pricetype": LIMIT,
            "product": leg_products.get(role) or default_product,
            "role": role,
            "trigger_type": rule.trigger_type,
            "status": rule.status,
            "order_id": rule.order_id,
            "message": rule.message,
        })
    status = gtt_status(gtt)
    # A rejection says why; so does a GTT the broker disabled until the trader acts (Kite).
    failed = next((rule.message for status in (FAILED, INACTIVE) for rule in rules
                   if rule.status == status and rule.message), None)
    return {
        "trigger_id": str(recorded.get("trigger_id") or gtt.gtt_id),
        "trigger_type": _book_trigger_type(gtt, recorded),
        "status": status,
        "message": failed,
        "symbol": symbol,
        "exchange": exchange,
        "trigger_prices": sorted(rule.trigger_price for rule in gtt.rules),
        "last_price": last_price if last_price is not None else Decimal(0),
        "legs": legs,
        "created_at": _ist_text(gtt.created_at or recorded.get("placed_at")),
        # Every change has a time: the broker's (a rule fired, expired or was cancelled there), or
        # ours (modified, cancelled through the gateway), whichever is latest.
        "updated_at": _ist_text(last_change(recorded.get("modified_at"), recorded.get("updated_at"),
                                            recorded.get("cancelled_at"), gtt.updated_at)),
        "expires_at": _ist_text(gtt.expires_at),
    }
