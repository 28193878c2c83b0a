"""The BRACKET on a broker without one (Kite): the entry is a `single` GTT; once its order has
filled, the exit is one native OCO (a `two-leg`) at the bracket's stop-loss and target, on the
opposite side. This module places that exit, exactly once.

`advance()` runs at the start of every watcher pass (services/watcher.py calls it), in every
process at start and then in the lease holder. For each bracket not yet settled it reads the
entry GTT; when the trigger has fired it follows the order (`/orders/<id>`):
- COMPLETE: the exit is claimed in the store (`staged_exits`, one row per bracket, its primary
  key the bracket's trigger id), and only the claimant sends it. A restart or a second worker
  finds the claim and does nothing.
- REJECTED or CANCELLED (or the trigger could not place the order): no exit, and the bracket's
  stages say why.
An exit place whose answer was lost is settled by lookup, as a lost place is (services/place.py
`find_placed`): found, it is recorded; certainly absent, the claim is released for the next
pass. A claim left by a process that died mid-call is looked up the same way once it is older
than any call could take (`stale_after`).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable

from openalgo_gtt.brokers.base import Broker, OrderReader
from openalgo_gtt.brokers.errors import BrokerError, InputRejected
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.gtt import gtt_status
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, FAILED, NATIVE_OCO, STOPLOSS, TARGET, TRIGGERED, BrokerGtt, GttRequest, GttRule,
)
from openalgo_gtt.domain.records import RecordedTrigger
from openalgo_gtt.store.staged_exits import FAILED as EXIT_FAILED
from openalgo_gtt.store.staged_exits import PLACING, REFUSED, StagedExits

log = logging.getLogger(__name__)

FILLED = "COMPLETE"
NOT_FILLED = frozenset({"REJECTED", "CANCELLED"})


def exit_request(bracket: RecordedTrigger, product: str) -> GttRequest:
    """The bracket's exit as one native OCO: its legs by position, lower then upper (for a long
    the stop-loss is below, for a short the target is), each a LIMIT at its recorded price."""
    legs = {leg["role"]: leg for leg in bracket.legs}
    target, stoploss = legs["target"], legs["stoploss"]
    low, high = sorted((target, stoploss), key=lambda leg: Decimal(leg["trigger_price"]))
    rules = (GttRule(STOPLOSS, BELOW, Decimal(low["trigger_price"]), price=Decimal(low["price"])),
             GttRule(TARGET, ABOVE, Decimal(high["trigger_price"]), price=Decimal(high["price"])))
    return GttRequest(type=NATIVE_OCO, instrument_key=bracket.instrument_key, transaction_type=target["action"],
                      product=product, quantity=bracket.quantity, rules=rules)


class StagedBrackets:
    def __init__(self, broker: Broker, exits: StagedExits, find_placed: Callable[[GttRequest, datetime], BrokerGtt | None],
                 holder: str, stale_after: timedelta, now: Callable[[], datetime] = utcnow):
        self.broker = broker
        self.exits = exits
        self._find_placed = find_placed
        self._holder = holder
        self._stale_after = stale_after
        self._now = now

    @staticmethod
    def needed_for(broker: Broker) -> bool:
        """Only a broker without a bracket GTT of its own, whose orders can be followed."""
        features = getattr(broker, "features", None)
        return features is not None and not features.native_bracket and isinstance(broker, OrderReader)

    def advance(self) -> int:
        """One pass over the unsettled brackets; returns how many exits were placed."""
        placed = 0
        for bracket in self.exits.pending_brackets():
            try:
                placed += self._advance(bracket)
            except BrokerError as exc:  # this one is retried next pass; the others go on
                log.warning("bracket %s: exit not settled yet: %s", bracket.trigger_id, exc)
            except Exception:  # noqa: BLE001 - one bad bracket must not stop the watcher's pass
                log.exception("bracket %s: staging its exit failed", bracket.trigger_id)
        return placed

    def _advance(self, bracket: RecordedTrigger) -> bool:
        claim = self.exits.get(bracket.trigger_id)
        if claim is not None:  # "placing": settled elsewhere, or left by a lost answer or a crash
            return self._settle_claim(bracket, claim.claimed_at)
        entry = self.broker.get_gtt(bracket.broker_ids[0])
        if entry is None or not entry.rules:
            return False
        rule = entry.rules[0]
        if rule.status == FAILED:
            return self._refuse(bracket, rule.order_id, f"the entry order was not placed: {rule.message}")
        if rule.status != TRIGGERED or not rule.order_id:
            return False  # not fired yet (or cancelled or expired: the watcher records that)
        state, message = self.broker.order_status(rule.order_id)
        if state in NOT_FILLED:
            why = f": {message}" if message else ""
            return self._refuse(bracket, rule.order_id, f"the entry order {rule.order_id} was {state.lower()}{why}")
        if state != FILLED:
            return False  # open or pending: look again next pass
        now = self._now()
        if not self.exits.claim(bracket.trigger_id, entry_gtt_id=entry.gtt_id, entry_order_id=rule.order_id,
                                holder=self._holder, now=now):
            return False  # another process claimed it first: it places the exit
        return self._place(bracket, exit_request(bracket, entry.product), now)

    def _place(self, bracket: RecordedTrigger, request: GttRequest, since: datetime) -> bool:
        try:
            exit_id = self.broker.place_gtt(request)
        except InputRejected as exc:
            self.exits.settle(bracket.trigger_id, EXIT_FAILED, f"the broker refused the exit: {exc.message}; "
                              "place the stop-loss and target yourself", self._now())
            log.error("bracket %s: the exit was refused: %s", bracket.trigger_id, exc.message)
            return False
        except BrokerError as exc:
            if not exc.may_have_reached:
                self.exits.release(bracket.trigger_id)  # nothing was done: the next pass tries again
                raise
            return self._settle_claim(bracket, since, force=True)
        self.exits.placed(bracket.trigger_id, exit_id, self._now())
        log.info("bracket %s: entry filled; exit OCO %s placed", bracket.trigger_id, exit_id)
        return True

    def _settle_claim(self, bracket: RecordedTrigger, claimed_at: datetime, *, force: bool = False) -> bool:
        """Find a claimed exit at the broker: recorded when there, the claim released when it
        certainly is not. A claim younger than `stale_after` may still be in its holder's hands."""
        if not force and self._now() - claimed_at < self._stale_after:
            return False
        found = self._find_placed(exit_request(bracket, self._product(bracket)), claimed_at)
        if found is not None:
            self.exits.placed(bracket.trigger_id, found.gtt_id, self._now(), "found at the broker after a lost answer")
            return True
        self.exits.release(bracket.trigger_id)
        return False

    def _product(self, bracket: RecordedTrigger) -> str:
        entry = self.broker.get_gtt(bracket.broker_ids[0])
        return entry.product if entry is not None else bracket.product

    def _refuse(self, bracket: RecordedTrigger, order_id: str | None, why: str) -> bool:
        now = self._now()
        message = f"{why}; no exit was placed"
        if not self.exits.claim(bracket.trigger_id, entry_gtt_id=bracket.broker_ids[0], entry_order_id=order_id,
                                holder=self._holder, now=now, state=REFUSED, message=message):
            return False
        log.warning("bracket %s: %s", bracket.trigger_id, message)
        return False

    def exit_of(self, bracket: RecordedTrigger) -> list[str]:
        """The placed exit's broker id, as a list (empty while there is none)."""
        claim = self.exits.get(bracket.trigger_id)
        return [claim.exit_gtt_id] if claim is not None and claim.exit_gtt_id else []

    def stages(self, bracket: RecordedTrigger, entry: BrokerGtt | None) -> dict:
        """Both stages of a staged bracket, as its status shows them."""
        claim = self.exits.get(bracket.trigger_id)
        exit_stage: dict = {"state": "waiting for the entry to fill", "trigger_id": None, "status": None,
                            "message": None}
        if claim is not None:
            exit_stage = {"state": claim.state, "trigger_id": claim.exit_gtt_id, "status": None, "message": claim.message}
            if claim.exit_gtt_id and claim.state != PLACING:
                exit_gtt = self.broker.get_gtt(claim.exit_gtt_id)
                exit_stage["status"] = gtt_status(exit_gtt) if exit_gtt is not None else None
        entry_rule = entry.rules[0] if entry is not None and entry.rules else None
        return {
            "entry": {"trigger_id": bracket.broker_ids[0], "status": gtt_status(entry) if entry else None,
                      "order_id": entry_rule.order_id if entry_rule else None,
                      "message": entry_rule.message if entry_rule else None},
            "exit": exit_stage,
        }
