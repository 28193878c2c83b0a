"""A trigger is one thing to its caller, however many broker GTTs are behind it: an OCO pair (two
Upstox GTTs, or Kite's one two-leg GTT) or a bracket (one Upstox MULTIPLE, or Kite's staged entry
and exit). What may be done to it follows from the whole, never from one part:

- a part's broker id (an OCO leg's GTT id, shown by sandbox ticks, notifications and the book's
  messages) names its trigger: a cancel acts on the whole, a modify is refused naming the trigger
  (changing one leg alone would leave a pair whose legs disagree);
- once any part has fired, the trigger can be neither cancelled nor modified: a fire cannot be
  undone, its position exists, and what is left (an OCO's other leg, a bracket's exits) is there
  because of it. The refusal says which part fired and when.

Pure: the services read the broker and the record, and raise what these functions return.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from openalgo_gtt.domain.clock import ist_text
from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.model import ENTRY, STOPLOSS, TARGET, BrokerGtt, TriggerKind
from openalgo_gtt.domain.oco import LOWER, UPPER, leg_state
from openalgo_gtt.domain.rule_status import GONE, Phase, phase

_PART_WORDS = {LOWER: "stop-loss leg", UPPER: "target leg", ENTRY: "entry", TARGET: "target",
               STOPLOSS: "stop-loss", TriggerKind.TWO_LEG: "broker GTT"}
_RULE_ORDER = (ENTRY, STOPLOSS, TARGET)  # the entry first: a bracket's exits fire only after it


@dataclass(frozen=True)
class Fired:
    """The part of a trigger that fired (the first found), as the broker last showed it."""

    broker_id: str
    role: str  # stoploss / target (an OCO leg), ENTRY / TARGET / STOPLOSS (a rule), or "" (a single)
    at: datetime | None  # when, if the broker or the gateway's record knows
    order_id: str | None = None
    gone: bool = False  # not listed at the broker any more: completed (or deleted there)


def fired_part(trigger_type: str, broker_ids: Sequence[str], gtts: Sequence[BrokerGtt | None],
               seen_at: dict[str, datetime] | None = None) -> Fired | None:
    """The part of a trigger that fired, from its broker GTTs as just read (None: not listed), or
    None when nothing fired. `seen_at` holds, by broker id, when the gateway recorded a part's
    change: the time shown when the broker gives none.

    A leg of a two-GTT pair that is not listed counts as fired: Upstox's list omits completed
    GTTs (domain/rule_status.GONE). A single or bracket GTT not listed is judged by its caller.
    """
    seen_at = seen_at or {}
    if trigger_type == TriggerKind.TWO_LEG and len(broker_ids) == 2:
        for broker_id, gtt, role in zip(broker_ids, gtts, (LOWER, UPPER)):
            state = leg_state(gtt)
            if phase(state) is Phase.FIRED:
                entry = next((rule for rule in gtt.rules if rule.strategy == ENTRY), None) if gtt else None
                return Fired(broker_id, role, (gtt.updated_at if gtt else None) or seen_at.get(broker_id),
                             entry.order_id if entry else None, gone=state == GONE)
        return None
    for broker_id, gtt in zip(broker_ids, gtts):
        if gtt is None:
            continue
        rules = sorted(gtt.rules, key=lambda r: _RULE_ORDER.index(r.strategy) if r.strategy in _RULE_ORDER else 9)
        rule = next((r for r in rules if phase(r.status) is Phase.FIRED), None)
        if rule is not None:
            role = "" if trigger_type == TriggerKind.SINGLE else rule.strategy
            return Fired(broker_id, role, gtt.updated_at or seen_at.get(broker_id), rule.order_id)
    return None


def _when(at: datetime | None) -> str:
    return f"at {ist_text(at)} IST" if at is not None else "(the broker gave no time)"


def fired_refusal(trigger_id: str, verb: str, fired: Fired, trigger_type: str, *,
                  exit_id: str | None = None) -> DomainError:
    """Why a trigger whose part fired cannot be `verb` ("cancelled", "modified")."""
    if fired.role in (LOWER, UPPER):  # one of two broker GTTs
        part = f"its {_PART_WORDS[fired.role]} {fired.broker_id}"
    elif trigger_type == TriggerKind.TWO_LEG:  # a rule of one native two-leg GTT (Kite)
        part = f"its {_PART_WORDS.get(fired.role, 'one')} leg"
    elif trigger_type == TriggerKind.BRACKET:
        part = f"its {_PART_WORDS.get(fired.role, str(fired.role).lower())}"
    else:
        part = "it"
    if trigger_type == TriggerKind.TWO_LEG:
        after = "a fired leg cannot be undone, and the other leg is cancelled because of it"
    elif trigger_type == TriggerKind.BRACKET:
        protects = f"its exit OCO {exit_id} stays" if exit_id else "its target and stop-loss stay"
        after = f"the position it opened exists, and {protects} at the broker to protect it"
    else:
        after = "a fired GTT cannot be undone"
    if fired.gone:
        what = f"{part} is no longer listed at the broker (completed, or deleted there)"
    else:
        order = f" (order {fired.order_id})" if fired.order_id else ""
        what = f"{part} fired {_when(fired.at)}{order}"
    return DomainError(f"{trigger_id} cannot be {verb}: {what}; {after}",
                       details={"fired_gtt": fired.broker_id, "fired_at": ist_text(fired.at) or None})


def recorded_fire_refusal(trigger_id: str, verb: str, at: datetime | None, message: str | None) -> DomainError:
    """Why a trigger the gateway recorded as triggered cannot be `verb`, when the broker's answer
    no longer shows the part that fired."""
    why = f" ({message})" if message else ""
    return DomainError(f"{trigger_id} cannot be {verb}: it was triggered {_when(at)}{why}; a fire cannot be undone",
                       details={"fired_at": ist_text(at) or None})


def leg_modify_refusal(leg_id: str, role: str, trigger_id: str) -> DomainError:
    """A modify sent with the broker id of one part of a trigger: the trigger changes as one."""
    part = _PART_WORDS.get(role, "leg")
    return DomainError(f"{leg_id} is the {part} of the OCO {trigger_id}: modify {trigger_id} instead "
                       "(an OCO's legs change together, never one alone)",
                       details={"pair_trigger_id": trigger_id, "role": role})
