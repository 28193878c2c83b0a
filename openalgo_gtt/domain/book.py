"""A broker GTT as OpenAlgo's order book shows it: its status, and one `gttorderbook` entry.
Pure: no I/O, no clock. (An OCO pair's entry is built from its legs' entries: domain/oco.py.)"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Mapping

from openalgo_gtt.domain.clock import as_utc, ist_text as format_ist
from openalgo_gtt.domain.intent import LIMIT
from openalgo_gtt.domain.model import (
    ENTRY, FAILED, INACTIVE, NATIVE_OCO, SINGLE, STOPLOSS, TARGET, BrokerGtt, TriggerKind, TriggerStatus,
)
from openalgo_gtt.domain.products import caller_product
from openalgo_gtt.domain.rule_status import Phase, phase

ROLE = {ENTRY: "entry", TARGET: "target", STOPLOSS: "stoploss"}
_ROLE_ORDER = {ENTRY: 0, TARGET: 1, STOPLOSS: 2}

# How a GTT that can no longer fire ended, when nothing of it fired.
_FATE = {Phase.FAILED: TriggerStatus.REJECTED, Phase.EXPIRED: TriggerStatus.EXPIRED,
         Phase.CANCELLED: TriggerStatus.CANCELLED}


def gtt_status(gtt: BrokerGtt) -> TriggerStatus:
    """active | triggered | rejected | expired | cancelled.

    Live if any rule can still fire. Otherwise 'triggered' if anything fired; else the ENTRY
    rule's fate decides (the exits of a bracket are only cancelled *because* the entry expired or
    failed); else the worst rule's fate.
    """
    if gtt.can_fire:
        return TriggerStatus.ACTIVE
    phases = [phase(rule.status) for rule in gtt.rules]
    if Phase.FIRED in phases:
        return TriggerStatus.TRIGGERED
    entry = next((phase(rule.status) for rule in gtt.rules if rule.strategy == ENTRY), None)
    if entry in _FATE:
        return _FATE[entry]
    for worst in (Phase.FAILED, Phase.EXPIRED, Phase.CANCELLED):
        if worst in phases:
            return _FATE[worst]
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


def first_of(*moments: datetime | None) -> datetime | None:
    """The earliest of the known moments; None when none is known."""
    known = [as_utc(moment) for moment in moments if moment is not None]
    return min(known) if known else None


def broker_change(gtt: BrokerGtt) -> datetime | None:
    """When the broker last changed `gtt`, or None when it has not since it was made (Kite and
    the sandbox give a new GTT an `updated_at` equal to its `created_at`)."""
    if gtt.updated_at is None or (gtt.created_at is not None and as_utc(gtt.updated_at) <= as_utc(gtt.created_at)):
        return None
    return gtt.updated_at


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
    expired_here = status == TriggerStatus.CANCELLED and recorded.get("status") == TriggerStatus.EXPIRED
    if expired_here:
        status = TriggerStatus.EXPIRED  # the gateway cancelled it at the caller's expires_at
    # A rejection says why; so does a GTT the broker disabled until the trader acts (Kite). These
    # are two particular statuses' messages, not phases: a disabled GTT is still waiting.
    failed = next((rule.message for status in (FAILED, INACTIVE) for rule in rules
                   if rule.status == status and rule.message), None)
    return {
        "trigger_id": str(recorded.get("trigger_id") or gtt.gtt_id),
        "trigger_type": _book_trigger_type(gtt, recorded),
        "status": status,
        "message": recorded.get("status_message") if expired_here else failed,
        "symbol": symbol,
        "exchange": exchange,
        "trigger_prices": sorted(rule.trigger_price for rule in gtt.rules),
        "last_price": last_price if last_price is not None else Decimal(0),
        "legs": legs,
        "created_at": _ist_text(gtt.created_at or recorded.get("placed_at")),
        # Every change has a time: the broker's (a rule fired, expired or was cancelled there), or
        # ours (modified, cancelled through the gateway), whichever is latest. A GTT that never
        # changed shows "", as OpenAlgo's book does (brokers stamp a new GTT updated = created).
        "updated_at": _ist_text(last_change(recorded.get("modified_at"), recorded.get("updated_at"),
                                            recorded.get("cancelled_at"), broker_change(gtt))),
        # Whichever ends it first: the caller's own expiry (expires_at on place, the watcher
        # cancels it then) or the broker's (the outer bound: a year, or the day for intraday).
        "expires_at": _ist_text(first_of(recorded.get("expires_at"), gtt.expires_at)),
        # Which alert or strategy placed it (the caller's `strategy`); "" for a GTT placed elsewhere.
        "strategy": recorded.get("strategy") or "",
    }
