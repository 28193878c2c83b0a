"""The checks and pieces every planner shares (plan_single.py, plan_bracket.py): the caller's
side, pricetype, quantity and tick, prices on the tick, market protection, the child order's
LIMIT price, and one leg as it is recorded."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.intent import LIMIT, MARKET, InstrumentLike, PlaceIntent
from openalgo_gtt.domain.model import BUY, SELL, UPSTOX_FEATURES, BrokerFeatures
from openalgo_gtt.domain.prices import on_tick, round_to_tick
from openalgo_gtt.domain.products import broker_product


def name_of(instrument: InstrumentLike) -> str:
    """An instrument as the caller named it: "IDEA on NSE"."""
    return f"{instrument.symbol} on {instrument.exchange}"


def upper(value: Any) -> str:
    return str(value or "").strip().upper()


def opposite(action: str) -> str:
    return SELL if action == BUY else BUY


def _action(intent: PlaceIntent) -> str:
    action = upper(intent.action)
    if action not in (BUY, SELL):
        raise DomainError(f"action must be BUY or SELL (got {intent.action!r})")
    return action


def _pricetype(intent: PlaceIntent) -> str:
    pricetype = upper(intent.pricetype) or LIMIT
    if pricetype not in (LIMIT, MARKET):
        raise DomainError(f"pricetype must be LIMIT or MARKET (got {intent.pricetype!r})")
    return pricetype


def _check_quantity(quantity: Any, instrument: InstrumentLike) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise DomainError(f"quantity must be a positive whole number (got {quantity!r})")
    lot = int(instrument.lot_size or 1)
    if instrument.is_derivative and lot > 1 and quantity % lot:
        raise DomainError(
            f"quantity {quantity} is not a multiple of the lot size {lot} of {name_of(instrument)}",
            details={"quantity": quantity, "lot_size": lot},
        )
    return quantity


def _tick(instrument: InstrumentLike) -> Decimal:
    if str(instrument.segment).endswith("_INDEX"):
        raise DomainError(f"{name_of(instrument)} is an index: indices cannot be traded, "
                          "use its future or options")
    tick = instrument.tick_size
    if tick is None or Decimal(tick) <= 0:
        # Indices (and broken master rows) have no tick: nothing can be ordered on them.
        raise DomainError(f"{name_of(instrument)} has no tick size: it cannot be traded")
    return Decimal(tick)


def on_tick_or_warn(value: Decimal, tick: Decimal, name: str, warnings: list[str]) -> Decimal:
    rounded = round_to_tick(value, tick)
    if not on_tick(value, tick):
        warnings.append(f"{name} {value} is not a multiple of the tick size {tick}; rounded to {rounded}")
    if rounded <= 0:
        raise DomainError(f"{name} {value} rounds to {rounded} at the tick size {tick}; it must be positive")
    return rounded


def market_protection(intent: PlaceIntent, pricetype: str, default: int, warnings: list[str],
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


def child_price(intent: PlaceIntent, action: str, pricetype: str, trigger: Decimal, tick: Decimal,
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
    return trigger if price == 0 else on_tick_or_warn(price, tick, "price", warnings)


def leg(role: str, action: str, trigger_type: str, trigger_price: Decimal, product: str, quantity: int,
        trailing_gap: Decimal | None = None, market_protection: int | None = None,
        price: Decimal | None = None) -> dict[str, Any]:
    """One leg as the gateway records it. The child is always a LIMIT: at `price` where the
    broker takes one, else at the trigger."""
    return {
        "role": role, "action": action, "trigger_type": trigger_type, "trigger_price": trigger_price,
        "price": trigger_price if price is None else price, "pricetype": LIMIT, "product": product,
        "quantity": quantity,
        "trailing_gap": trailing_gap, "market_protection": market_protection,
    }


def basics(intent: PlaceIntent, instrument: InstrumentLike, trigger_type: str,
           features: BrokerFeatures = UPSTOX_FEATURES):
    """What every plan checks first: (action, pricetype, product, broker product, quantity, tick)."""
    if upper(intent.trigger_type) != trigger_type:
        raise DomainError(f"this plan needs trigger_type {trigger_type} (got {intent.trigger_type!r})")
    product = upper(intent.product)
    return (_action(intent), _pricetype(intent), product, broker_product(product, features),
            _check_quantity(intent.quantity, instrument), _tick(instrument))
