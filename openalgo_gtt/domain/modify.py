"""What a modify may change. Upstox's modify replaces quantity and rules only, so a request that
changes anything else is refused before the broker is called (the caller cancels and places
again). Whether the trigger may be modified at all (not fired, not an OCO leg) is
domain/aggregate.py's."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.intent import BRACKET, OCO, InstrumentLike, PlaceIntent
from openalgo_gtt.domain.model import MULTIPLE, SINGLE, TriggerKind
from openalgo_gtt.domain.plan_checks import upper
from openalgo_gtt.domain.products import product_code, upstox_product

# The caller's, the broker's and the order book's names of a trigger type, as one label each.
_BOOK_LABEL = {SINGLE: TriggerKind.SINGLE, BRACKET: TriggerKind.BRACKET, MULTIPLE: TriggerKind.BRACKET,
               OCO: TriggerKind.TWO_LEG, "TWO-LEG": TriggerKind.TWO_LEG}


def _get(obj: Any, name: str) -> Any:
    """Read a field of a mapping or of an object (a stored row)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


_CALLER_TYPE = {TriggerKind.SINGLE: SINGLE, TriggerKind.BRACKET: BRACKET, TriggerKind.TWO_LEG: OCO}


def own_type(existing: Any, intent: PlaceIntent) -> PlaceIntent:
    """The intent with the GTT's own type when the modify left `trigger_type` out (never SINGLE
    by default: an OCO modified without restating it would be refused as "a SINGLE needs...")."""
    if intent.trigger_type is not None:
        return intent
    label = _BOOK_LABEL.get(upper(_get(existing, "trigger_type")), upper(_get(existing, "trigger_type")))
    return replace(intent, trigger_type=_CALLER_TYPE.get(label, SINGLE))


def check_modify_allowed(existing: Any, intent: PlaceIntent, instrument: InstrumentLike) -> None:
    """Upstox's modify replaces only quantity and rules. Refuse any other change up front.
    Products compare as Upstox codes (CNC and NRML are both D: relabelling is not a change)."""
    changed = []
    if str(_get(existing, "instrument_key") or "") != instrument.instrument_key:
        changed.append("instrument")
    if upper(_get(existing, "action")) != upper(intent.action):
        changed.append("action")
    if product_code(_get(existing, "product")) != upstox_product(intent.product):
        changed.append("product")
    old_type = _BOOK_LABEL.get(upper(_get(existing, "trigger_type")), upper(_get(existing, "trigger_type")))
    if old_type != _BOOK_LABEL.get(upper(intent.trigger_type)):
        changed.append("trigger_type")
    if changed:
        raise DomainError("instrument, exchange, action, product and type cannot change: cancel and place again",
                          details={"changed": changed})
