"""What changed between the gateway's record of a live trigger and what the broker says now, and
the events each change gives the trader. Pure: the watcher feeds it records and broker GTTs,
writes what it returns in one transaction, and writes nothing when it returns None.

The record keeps, besides the trigger's status, `broker_state`: the broker status of every rule
that is no longer waiting (fired, failed, expired, cancelled), by broker GTT id and rule. A rule
moving within one phase (SCHEDULED to INACTIVE, OPEN to COMPLETED: domain/rule_status.py) is no
change worth a write; a rule moving from waiting to anything else is an event.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from openalgo_gtt.domain.book import ROLE, gtt_status
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, CANCELLED, ENTRY, BrokerGtt, EventKind, RuleState, TriggerKind, TriggerStatus,
)
from openalgo_gtt.domain.notifications import Event
from openalgo_gtt.domain.oco import LOWER, UPPER, cancelled_by_gateway, leg_state, pair_status, settled_message
from openalgo_gtt.domain.rule_status import GONE, Phase, phase

BrokerState = dict[str, dict[str, str]]  # broker GTT id -> rule strategy -> broker status


@dataclass(frozen=True)
class Watched:
    """A live trigger as the watcher compares it: its record, with the last seen broker state
    and, for an OCO, each leg's recorded (status, message)."""

    trigger_id: str
    trigger_type: str  # TriggerKind
    broker_ids: list[str]
    symbol: str
    exchange: str
    action: str
    quantity: int
    legs: list[dict]  # the rules sent, with each leg's role, trigger_type and trigger_price
    status: str
    status_message: str | None
    broker_state: BrokerState
    leg_rows: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    @property
    def is_pair(self) -> bool:
        """Two broker GTTs the watcher keeps in step (Upstox's OCO), not one native two-leg
        GTT the broker settles itself (Kite's)."""
        return self.trigger_type == TriggerKind.TWO_LEG and len(self.broker_ids) == 2


@dataclass
class Change:
    """What to write for one trigger, conditional on its record still being what was read
    (`was_status`, `was_state`): so two observers of one change (the webhook in one worker and
    the poll in another) write it, and tell the trader, once."""

    trigger_id: str
    was_status: str
    was_state: BrokerState
    status: str
    message: str | None
    broker_state: BrokerState
    leg_updates: list[tuple[str, str, str | None]] = field(default_factory=list)  # (broker id, status, message)
    events: list[Event] = field(default_factory=list)
    to_cancel: list[str] = field(default_factory=list)  # OCO legs the gateway must cancel first


def _phases(state: BrokerState) -> dict[tuple[str, str], str]:
    return {(gtt_id, strategy): phase(status) for gtt_id, rules in state.items() for strategy, status in rules.items()
            if phase(status) is not Phase.WAITING}


def _event(w: Watched, kind: str, now: datetime, **facts) -> Event:
    base = dict(kind=kind, at=now, trigger_id=w.trigger_id, symbol=w.symbol, exchange=w.exchange, action=w.action,
                quantity=w.quantity)
    base.update({k: v for k, v in facts.items() if v is not None})
    return Event(**base)


def _direction(trigger_type: str | None) -> str | None:
    return trigger_type if trigger_type in (ABOVE, BELOW) else None


def _rule_event(w: Watched, kind: str, gtt: BrokerGtt, rule: RuleState, now: datetime, leg: str | None) -> Event:
    return _event(w, kind, now, action=rule.transaction_type, quantity=gtt.quantity, triggers=(str(rule.trigger_price),),
                  direction=_direction(rule.trigger_type), leg=leg, broker_id=gtt.gtt_id, order_id=rule.order_id,
                  message=rule.message)


def observe(w: Watched, gtts: list[BrokerGtt | None], now: datetime) -> Change | None:
    """The change to record for `w` given its broker GTTs (None: not listed), or None."""
    if w.is_pair:
        return _observe_pair(w, gtts[0], gtts[1], now)
    if not gtts or gtts[0] is None:
        return None  # Upstox's list omits completed GTTs: nothing new can be read from absence
    return _observe_gtt(w, gtts[0], now)


def _observe_gtt(w: Watched, gtt: BrokerGtt, now: datetime) -> Change | None:
    status = gtt_status(gtt)
    message = next((rule.message for rule in gtt.rules if rule.message), None)
    rules = {rule.strategy: rule.status for rule in gtt.rules if phase(rule.status) is not Phase.WAITING}
    state = {gtt.gtt_id: rules} if rules else {}
    old = _phases(w.broker_state)
    if status == w.status and message == w.status_message and _phases(state) == old:
        return None
    events: list[Event] = []
    is_bracket = w.trigger_type == TriggerKind.BRACKET
    newly = [rule for rule in gtt.rules
             if phase(rule.status) is not Phase.WAITING and old.get((gtt.gtt_id, rule.strategy)) != phase(rule.status)]
    for rule in newly:
        leg = ROLE.get(rule.strategy) if is_bracket else None
        if phase(rule.status) is Phase.FIRED:
            events.append(_rule_event(w, EventKind.TRIGGERED, gtt, rule, now, leg))
        elif phase(rule.status) is Phase.FAILED:
            events.append(_rule_event(w, EventKind.REJECTED, gtt, rule, now, leg))
    entry = next((rule for rule in gtt.rules if rule.strategy == ENTRY), gtt.rules[0] if gtt.rules else None)
    fates = {phase(rule.status) for rule in gtt.rules}
    if entry is not None and any(phase(rule.status) is Phase.EXPIRED for rule in newly):
        events.append(_rule_event(w, EventKind.EXPIRED, gtt, entry, now, None))
    # A bracket's exits are cancelled *because* the other exit filled or the entry failed or
    # expired: only a cancel with nothing else behind it was done outside the gateway.
    if (entry is not None and any(phase(rule.status) is Phase.CANCELLED for rule in newly)
            and not fates & {Phase.FIRED, Phase.FAILED, Phase.EXPIRED}):
        events.append(_rule_event(w, EventKind.CANCELLED_AT_BROKER, gtt, entry, now, None))
    return Change(w.trigger_id, w.status, w.broker_state, status, message, state, events=events)


def _observe_pair(w: Watched, lower: BrokerGtt | None, upper: BrokerGtt | None, now: datetime) -> Change | None:
    ids = w.broker_ids
    states = [leg_state(lower), leg_state(upper)]
    status = pair_status(*states)
    old = _phases(w.broker_state)
    leg_updates = [(ids[i], states[i], None) for i in (0, 1) if w.leg_rows.get(ids[i], (None, None))[0] != states[i]]
    events: list[Event] = []
    message = w.status_message
    to_cancel: list[str] = []
    final = list(states)
    for i, gtt in enumerate((lower, upper)):
        if phase(states[i]) is Phase.WAITING or old.get((ids[i], ENTRY)) == phase(states[i]):
            continue
        role = (LOWER, UPPER)[i]
        recorded = w.legs[i] if i < len(w.legs) else {}
        rule = next((r for r in gtt.rules if r.strategy == ENTRY), None) if gtt is not None else None
        kind = {Phase.FIRED: EventKind.TRIGGERED, Phase.FAILED: EventKind.REJECTED, Phase.EXPIRED: EventKind.EXPIRED,
                Phase.CANCELLED: EventKind.CANCELLED_AT_BROKER}.get(phase(states[i]), EventKind.CANCELLED_AT_BROKER)
        if kind == EventKind.EXPIRED and any(e.kind == EventKind.EXPIRED for e in events):
            continue  # both legs expire together: one message
        events.append(_event(
            w, kind, now, action=(rule.transaction_type if rule else recorded.get("action")),
            triggers=(str(rule.trigger_price if rule else recorded.get("trigger_price")),),
            direction=_direction(rule.trigger_type if rule else recorded.get("trigger_type")), leg=role,
            broker_id=ids[i], order_id=rule.order_id if rule else None,
            message=(rule.message if rule else None) or ("no longer listed at the broker (completed, or deleted "
                                                         "there)" if states[i] == GONE else None)))
    if status != TriggerStatus.ACTIVE:
        # One leg is done: the other must not fire too. Every leg still waiting is cancelled.
        for i in (0, 1):
            if phase(states[i]) is Phase.WAITING:
                to_cancel.append(ids[i])
                final[i] = CANCELLED
                why = cancelled_by_gateway(CANCELLED, ids[1 - i], states[1 - i])
                leg_updates = [u for u in leg_updates if u[0] != ids[i]] + [(ids[i], CANCELLED, why)]
        message = settled_message(ids, tuple(states))
        if to_cancel:
            events.append(_event(w, EventKind.OCO_SETTLED, now, message=message))
        if phase(states[0]) is Phase.FIRED and phase(states[1]) is Phase.FIRED:
            events.append(_event(w, EventKind.OCO_BOTH_FIRED, now, message=message))
    state = {ids[i]: {ENTRY: final[i]} for i in (0, 1) if phase(final[i]) is not Phase.WAITING}
    if status == w.status and message == w.status_message and not leg_updates and _phases(state) == old:
        return None
    return Change(w.trigger_id, w.status, w.broker_state, status, message, state, leg_updates, events, to_cancel)
