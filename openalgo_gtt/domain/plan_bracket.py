"""A BRACKET: OpenAlgo's request -> an entry with a target and a stop-loss. Pure: no I/O, no clock.

On Upstox one MULTIPLE GTT (ENTRY, then TARGET and STOPLOSS, IMMEDIATE, on the opposite side).
On a broker with no bracket GTT (Kite) the entry alone, with the exits in the plan's legs for the
gateway to place once the entry's order has filled (services/staged_bracket.py). The prices come
from the bracket strategy (domain/strategy.py).
"""
from __future__ import annotations

from decimal import Decimal

from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.intent import BRACKET, DEFAULT_MARKET_PROTECTION, InstrumentLike, PlaceIntent, Plan
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, ENTRY, IMMEDIATE, MULTIPLE, SINGLE, STOPLOSS, TARGET, UPSTOX_FEATURES, BrokerFeatures,
    GttRequest, GttRule,
)
from openalgo_gtt.domain.plan_checks import (
    basics, child_price, leg, market_protection, name_of, on_tick_or_warn, opposite,
)
from openalgo_gtt.domain.strategy import DEFAULT_PCTS, BracketPcts, BracketPrices, bracket_prices


def plan_bracket(intent: PlaceIntent, instrument: InstrumentLike, open_price: Decimal | None,
                 last_price: Decimal | None, pcts: BracketPcts = DEFAULT_PCTS, *,
                 default_market_protection: int = DEFAULT_MARKET_PROTECTION,
                 features: BrokerFeatures = UPSTOX_FEATURES) -> Plan:
    """ENTRY (ABOVE/BELOW the last price), TARGET and STOPLOSS (IMMEDIATE, opposite side).

    On a broker with no native bracket (Kite) the request is the ENTRY alone, a SINGLE; the exits
    are in the plan's legs, and the gateway places them as one native OCO once the entry's order
    has filled (services/staged_bracket.py)."""
    action, pricetype, product, code, quantity, tick = basics(intent, instrument, BRACKET, features)
    if intent.trailing_gap is not None and not features.trailing_stop:
        raise DomainError(f"trailing_gap has no {features.name} equivalent: {features.name}'s GTTs cannot trail "
                          "a stop-loss; leave it out", details={"trailing_gap": str(intent.trailing_gap)})
    if last_price is None or last_price <= 0:
        raise DomainError(f"no last price is available for {name_of(instrument)}: "
                          "a bracket's entry direction cannot be decided")

    prices = bracket_prices(action, open_price, last_price, intent.entry_mode, intent.entry_value,
                            intent.target_type, intent.target_value, intent.sl_type, intent.sl_value,
                            tick, pcts)
    warnings = list(prices.warnings)

    gap = None
    if intent.trailing_gap is not None:
        gap = on_tick_or_warn(intent.trailing_gap, tick, "trailing_gap", warnings)
        distance = abs(prices.entry - prices.stoploss)
        if gap >= distance:
            # Upstox's limits on the gap are undocumented: warn, let the broker decide.
            warnings.append(f"trailing_gap {gap} is not smaller than the entry-stoploss distance {distance}")

    protection = market_protection(intent, pricetype, default_market_protection, warnings, features)
    for ignored in ("price", "triggerprice_sl", "triggerprice_tg", "stoploss", "target"):
        value = getattr(intent, ignored)
        if value is not None and value > 0:
            warnings.append(f"{ignored} is ignored for a BRACKET GTT (its prices come from the entry, "
                            "target and sl modes)")

    # ABOVE fires when the price rises to the entry, BELOW when it falls to it: pick the side the
    # entry is on now, or the GTT would fire at once (or never).
    direction = ABOVE if prices.entry >= last_price else BELOW
    exit_side = opposite(action)
    if not features.native_bracket:
        return _staged_bracket(action, pricetype, product, code, quantity, tick, direction, instrument.instrument_key,
                               prices, protection, features, warnings)
    rules = (
        GttRule(ENTRY, direction, prices.entry, market_protection=protection),
        GttRule(TARGET, IMMEDIATE, prices.target, market_protection=protection),
        GttRule(STOPLOSS, IMMEDIATE, prices.stoploss, trailing_gap=gap, market_protection=protection),
    )
    request = GttRequest(type=MULTIPLE, instrument_key=instrument.instrument_key, transaction_type=action,
                         product=code, quantity=quantity, rules=rules)
    legs = (
        leg("entry", action, direction, prices.entry, product, quantity, market_protection=protection),
        leg("target", exit_side, IMMEDIATE, prices.target, product, quantity, market_protection=protection),
        leg("stoploss", exit_side, IMMEDIATE, prices.stoploss, product, quantity, trailing_gap=gap,
            market_protection=protection),
    )
    return Plan(request=request, warnings=tuple(warnings),
                prices={"entry": prices.entry, "target": prices.target, "stoploss": prices.stoploss},
                legs=legs)


def _staged_bracket(action: str, pricetype: str, product: str, code: str, quantity: int, tick: Decimal,
                    direction: str, instrument_key: str, prices: BracketPrices, protection: int | None,
                    features: BrokerFeatures, warnings: list[str]) -> Plan:
    """A bracket on a broker without one: the entry as a SINGLE now, the exits (each a LIMIT at
    its trigger, or protected for MARKET) recorded in the legs for the gateway to place later."""
    exit_side = opposite(action)
    plain = PlaceIntent(trigger_type=SINGLE, action=action, product=product, quantity=quantity, pricetype=pricetype)
    entry_price = child_price(plain, action, pricetype, prices.entry, tick, protection, features, warnings)
    target_price = child_price(plain, exit_side, pricetype, prices.target, tick, protection, features, warnings)
    stop_price = child_price(plain, exit_side, pricetype, prices.stoploss, tick, protection, features, warnings)
    entry = GttRule(ENTRY, direction, prices.entry, price=entry_price)
    request = GttRequest(type=SINGLE, instrument_key=instrument_key, transaction_type=action,
                         product=code, quantity=quantity, rules=(entry,))
    # The exits' directions as the native OCO will hold them: the stop-loss is the lower leg of a
    # long, the target the lower leg of a short.
    target_dir, stop_dir = (ABOVE, BELOW) if action == BUY else (BELOW, ABOVE)
    legs = (
        leg("entry", action, direction, prices.entry, product, quantity, price=entry_price),
        leg("target", exit_side, target_dir, prices.target, product, quantity, price=target_price),
        leg("stoploss", exit_side, stop_dir, prices.stoploss, product, quantity, price=stop_price),
    )
    warnings.append(f"{features.name} has no bracket GTT: the entry is placed now, and the target and stop-loss "
                    "as one OCO once the entry's order has filled")
    return Plan(request=request, warnings=tuple(warnings),
                prices={"entry": prices.entry, "target": prices.target, "stoploss": prices.stoploss}, legs=legs)
