"""A SINGLE: OpenAlgo's request -> one broker GTT with one ENTRY rule. Pure: no I/O, no clock.

Upstox facts that shape the planners (see the reference notes):
- a fired rule places a LIMIT order *at the trigger price*; there is no separate limit price and
  no MARKET child (a MARKET request becomes `market_protection` on the rule);
- every GTT needs an ENTRY rule; SINGLE = one ENTRY rule (ABOVE or BELOW), MULTIPLE = ENTRY plus
  TARGET and STOPLOSS (IMMEDIATE), the exits on the opposite side;
- modify replaces quantity and rules only: instrument, product and side are fixed.
A broker whose child order has a price of its own (Kite) declares it in its `BrokerFeatures`.
"""
from __future__ import annotations

from decimal import Decimal

from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.intent import DEFAULT_MARKET_PROTECTION, LIMIT, InstrumentLike, PlaceIntent, Plan
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, ENTRY, SINGLE, UPSTOX_FEATURES, BrokerFeatures, GttRequest, GttRule,
)
from openalgo_gtt.domain.plan_checks import basics, child_price, leg, market_protection, on_tick_or_warn


def plan_single(intent: PlaceIntent, instrument: InstrumentLike, *,
                default_market_protection: int = DEFAULT_MARKET_PROTECTION,
                features: BrokerFeatures = UPSTOX_FEATURES) -> Plan:
    """One ENTRY rule: triggerprice_tg -> ABOVE, triggerprice_sl -> BELOW."""
    action, pricetype, product, code, quantity, tick = basics(intent, instrument, SINGLE, features)
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
    trigger = on_tick_or_warn(raw, tick, name, warnings)

    price = intent.price or Decimal(0)
    if pricetype == LIMIT and price > 0 and price != trigger and not features.limit_price:
        warnings.append(
            f"Upstox has no separate limit price: the child order will be a LIMIT at the trigger "
            f"price {trigger}, not at price {price}"
        )
    protection = market_protection(intent, pricetype, default_market_protection, warnings, features)
    limit = child_price(intent, action, pricetype, trigger, tick, protection, features, warnings)
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
    entry = leg("entry", action, direction, trigger, product, quantity, market_protection=protection, price=limit)
    return Plan(request=request, warnings=tuple(warnings), prices={"entry": trigger}, legs=(entry,))
