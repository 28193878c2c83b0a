"""OCO (OpenAlgo's and Kite's `two-leg`) on Upstox, which has no exit-only OCO.

An OCO protects a position that already exists: a stop-loss trigger below and a target trigger
above (for a long; the same for a short, with BUY legs), both on the caller's side. Upstox's
every GTT needs an ENTRY rule, so an OCO is placed as two Upstox SINGLE GTTs: the lower leg
`BELOW triggerprice_sl`, the upper leg `ABOVE triggerprice_tg`. Never as a MULTIPLE with an
IMMEDIATE entry: that would open a new position at once. The gateway's watcher cancels one leg
when the other fires.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.model import (
    CANCELLED, ENTRY, NATIVE_OCO, SINGLE, STOPLOSS, TARGET, UPSTOX_FEATURES, BrokerFeatures, TriggerKind,
    TriggerStatus,
)
from openalgo_gtt.domain.intent import InstrumentLike, PlaceIntent, Plan
from openalgo_gtt.domain.plan_single import plan_single
from openalgo_gtt.domain.rule_status import GONE, Phase, phase

LOWER = "stoploss"  # the leg that fires when the price falls to triggerprice_sl
UPPER = "target"  # the leg that fires when the price rises to triggerprice_tg


@dataclass(frozen=True)
class OcoPlan:
    lower: Plan
    upper: Plan
    warnings: tuple[str, ...]

    @property
    def prices(self) -> dict[str, Decimal]:
        return {"stoploss_trigger": self.lower.prices["entry"], "target_trigger": self.upper.prices["entry"]}

    @property
    def legs(self) -> list[dict]:
        return [dict(self.lower.legs[0], role=LOWER), dict(self.upper.legs[0], role=UPPER)]


def plan_oco(intent: PlaceIntent, instrument: InstrumentLike, features: BrokerFeatures = UPSTOX_FEATURES) -> OcoPlan:
    sl, tg = intent.triggerprice_sl or Decimal(0), intent.triggerprice_tg or Decimal(0)
    if sl <= 0 or tg <= 0:
        raise DomainError("an OCO needs both triggerprice_sl (the stop-loss trigger, below the market) "
                          "and triggerprice_tg (the target trigger, above it)")
    single = replace(intent, trigger_type=SINGLE, stoploss=None, target=None, trailing_gap=None)
    lower = plan_single(replace(single, triggerprice_sl=sl, triggerprice_tg=Decimal(0),
                                price=intent.stoploss or Decimal(0)), instrument, features=features)
    upper = plan_single(replace(single, triggerprice_sl=Decimal(0), triggerprice_tg=tg,
                                price=intent.target or Decimal(0)), instrument, features=features)
    low, high = lower.prices["entry"], upper.prices["entry"]
    if low >= high:
        raise DomainError(f"an OCO needs triggerprice_sl < triggerprice_tg (got {low} and {high} after "
                          "rounding to the tick)", details={"triggerprice_sl": str(low), "triggerprice_tg": str(high)})
    warnings = tuple(f"stop-loss leg: {w}" for w in lower.warnings) + tuple(f"target leg: {w}" for w in upper.warnings)
    return OcoPlan(lower, upper, warnings)


def plan_two_leg(intent: PlaceIntent, instrument: InstrumentLike, features: BrokerFeatures) -> Plan:
    """An OCO as ONE broker GTT, on a broker that has them (Kite's `two-leg`): trigger values
    [triggerprice_sl, triggerprice_tg], the stop-loss leg a LIMIT at `stoploss` and the target
    leg at `target` (each its trigger when 0 or absent), both on the caller's action. No pair
    and no watcher: the broker cancels the other leg itself."""
    pair = plan_oco(intent, instrument, features)
    low, high = pair.lower.request.rules[0], pair.upper.request.rules[0]
    rules = (replace(low, strategy=STOPLOSS), replace(high, strategy=TARGET))
    request = replace(pair.lower.request, type=NATIVE_OCO, rules=rules)
    return Plan(request=request, warnings=pair.warnings, prices=pair.prices, legs=tuple(pair.legs))


# --- the pair's state, as the watcher and the order book see it ---------------------------------

def leg_state(gtt) -> str:
    """The ENTRY rule's broker status of one leg (a BrokerGtt), or GONE when it is not listed."""
    if gtt is None:
        return GONE
    entry = next((rule for rule in gtt.rules if rule.strategy == ENTRY), None)
    if entry is None and gtt.rules:
        # A native OCO has no ENTRY: the leg that moved speaks for it, else the first.
        entry = next((rule for rule in gtt.rules if phase(rule.status) is not Phase.WAITING), gtt.rules[0])
    return entry.status if entry is not None else GONE


def pair_status(lower_state: str, upper_state: str) -> TriggerStatus:
    """active while both legs wait; once either stops waiting the pair is over, and says why."""
    phases = {phase(lower_state), phase(upper_state)}
    if phases == {Phase.WAITING}:
        return TriggerStatus.ACTIVE
    if Phase.FIRED in phases:
        return TriggerStatus.TRIGGERED
    if Phase.FAILED in phases:
        return TriggerStatus.REJECTED
    if Phase.EXPIRED in phases:
        return TriggerStatus.EXPIRED
    return TriggerStatus.CANCELLED  # cancelled at the broker, or a status this gateway does not know


def leg_status(state: str) -> TriggerStatus:
    """One leg's own status (its pair's is `pair_status`): what a status call on a leg's id shows."""
    return pair_status(state, state)  # a pair of two such legs reads the same


_ROLE_WORDS = {LOWER: "stop-loss", UPPER: "target"}
_WHAT_HAPPENED = {
    Phase.FIRED: "fired", Phase.CANCELLED: "was cancelled at the broker", Phase.EXPIRED: "expired",
    Phase.FAILED: "was rejected at the broker",
}


def happened(state: str) -> str:
    """What a leg's broker status says happened to it, as a trader reads it."""
    if state == GONE:
        return "is no longer listed at the broker (completed, or deleted there)"
    return _WHAT_HAPPENED.get(phase(state), f"left SCHEDULED ({state})")


def settled_message(broker_ids: tuple[str, str] | list[str], states: tuple[str, str]) -> str:
    """The pair's message once it is over, as a trader reads it: which leg did what, and that the
    other was cancelled. E.g. "the target leg GTT-1 fired; the stop-loss leg GTT-2 was cancelled"."""
    roles = (LOWER, UPPER)
    done = [i for i, state in enumerate(states) if phase(state) is not Phase.WAITING]
    waiting = [i for i, state in enumerate(states) if phase(state) is Phase.WAITING]
    parts = [f"the {_ROLE_WORDS[roles[i]]} leg {broker_ids[i]} {happened(states[i])}" for i in done]
    parts += [f"the {_ROLE_WORDS[roles[i]]} leg {broker_ids[i]} was cancelled" for i in waiting]
    return "; ".join(parts)


def cancelled_by_gateway(this_state: str, other_id: str, other_state: str) -> str | None:
    """The message of a leg the gateway cancelled because the other leg fired, or None when this
    leg was not cancelled for that reason (the broker's own message stands)."""
    if this_state == CANCELLED and phase(other_state) is Phase.FIRED:
        return f"cancelled by the gateway: the other leg ({other_id}) {happened(other_state)}"
    return None


def pair_book_entry(lower_entry: dict, upper_entry: dict, *, trigger_id: str, status: str,
                    message: str | None) -> dict:
    """One `two-leg` entry from the two legs' single entries (as `book_entry` made them)."""
    legs = [dict(leg, role=role) for entry, role in ((lower_entry, LOWER), (upper_entry, UPPER))
            for leg in entry["legs"]]
    return {
        **lower_entry,
        "trigger_id": trigger_id,
        "trigger_type": TriggerKind.TWO_LEG,
        "status": status,
        "message": message,
        "trigger_prices": sorted(lower_entry["trigger_prices"] + upper_entry["trigger_prices"]),
        "legs": legs,
        # The later leg's change ("YYYY-MM-DD HH:MM:SS" texts order as times; "" when unknown).
        "updated_at": max(lower_entry["updated_at"], upper_entry["updated_at"]),
    }
