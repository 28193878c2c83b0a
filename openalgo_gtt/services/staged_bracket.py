"""The BRACKET on a broker without one (Kite): the entry is a `single` GTT; once its order has
filled, the exit is one native OCO (a `two-leg`) at the bracket's stop-loss and target, on the
opposite side. This module places that exit, exactly once.

`advance()` runs at the start of every watcher pass (services/watcher.py calls it), in every
process at start and then in the lease holder. For each bracket not yet settled it reads the
entry GTT; when the trigger has fired it follows the order (`/orders/<id>`):
- COMPLETE: the exit is placed as a place attempt (domain/place_attempt.py), under a request
  record keyed by the bracket (`exit:<trigger id>`), through the same driver as a caller's place
  (services/attempts.py): the record's key makes one process the sender; an answer lost after
  Kite did the work is looked up at once, then settled by the watcher's pass like any attempt
  (found and recorded, or lapsed and placed again on the next pass, a late exit matched).
- REJECTED or CANCELLED (or the trigger could not place the order): no exit, and the bracket's
  stages say why.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from openalgo_gtt.brokers.base import Broker, OrderReader
from openalgo_gtt.brokers.errors import BrokerError, InputRejected
from openalgo_gtt.domain.gtt import gtt_status
from openalgo_gtt.domain.model import (
    ABOVE, BELOW, FAILED, NATIVE_OCO, STOPLOSS, TARGET, TRIGGERED, BrokerGtt, GttRequest, GttRule,
)
from openalgo_gtt.domain.records import RecordedTrigger
from openalgo_gtt.domain.place_attempt import UNSETTLED, PlaceAttempt
from openalgo_gtt.services.attempts import AttemptDriver
from openalgo_gtt.store.request_records import DONE, FAULT, Snapshot, gone_quiet
from openalgo_gtt.store.staged_exits import EXIT_ROLE, PLACED, PLACING, StagedExits

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


EXIT_OWNER = "(gateway)"  # the request records' api_key_name for the exits it places itself
EXIT_ENDPOINT = "staged-exit"
EXIT_KEY_TTL = timedelta(days=30)  # longer than any bracket lives


def exit_plan(bracket: RecordedTrigger, request: GttRequest, entry_gtt_id: str, entry_order_id: str | None) -> dict:
    """The exit's intent, as a place attempt keeps it (services/place.py `_intent` for a place)."""
    return {
        "kind": "staged_exit", "bracket": bracket.trigger_id, "entry_gtt_id": entry_gtt_id,
        "entry_order_id": entry_order_id, "requests": [request.to_json()], "roles": [EXIT_ROLE], "prices": {},
        "order": {"instrument_key": bracket.instrument_key, "symbol": bracket.symbol, "exchange": bracket.exchange,
                  "trigger_type": EXIT_ROLE, "action": request.transaction_type, "product": bracket.product,
                  "quantity": bracket.quantity, "legs": bracket.legs, "strategy": bracket.strategy,
                  "request_id": f"exit-{bracket.trigger_id}", "api_key_name": None},
    }


class StagedBrackets:
    def __init__(self, broker: Broker, exits: StagedExits, driver: AttemptDriver):
        self.broker = broker
        self.exits = exits
        self.driver = driver
        self._records = driver.store.requests
        self._attempts = driver.store.attempts

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
        legacy = self.exits.get(bracket.trigger_id)
        if legacy is not None and legacy.state == PLACING:
            return self._settle_legacy_claim(bracket, legacy.claimed_at)
        record = self._records.existing(EXIT_OWNER, _exit_key(bracket))
        if record is not None and self._open_attempt(record.id):
            return False  # being sent, or its outcome unknown: the watcher's pass settles it
        if record is not None and record.state == DONE:
            return False
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
        request = exit_request(bracket, entry.product)
        attempt = self._begin(bracket, record, exit_plan(bracket, request, entry.gtt_id, rule.order_id))
        if attempt is None:
            return False  # another process holds the exit's record: it places the exit
        return self._send(bracket, request, attempt)

    def _begin(self, bracket: RecordedTrigger, record: Snapshot | None, plan: dict) -> PlaceAttempt | None:
        """The exit's record (claimed, or taken over from an attempt that lapsed or was refused)
        and a new attempt, with no trade (the bracket's was counted when it was placed)."""
        if record is not None and not (record.state == FAULT or self._stale(record)):
            return None  # held by a process still working on it
        if record is not None and not self._records.take_over(record):
            return None
        now = self.driver.clock.now()
        with self.driver.store.unit_of_work() as uow:
            record_id = record.id if record is not None else uow.claim_request(
                EXIT_OWNER, _exit_key(bracket), EXIT_ENDPOINT, _exit_key(bracket), EXIT_KEY_TTL)
            if record_id is None:
                return None
            return uow.begin_attempt(record_id, plan, None, now)

    def _send(self, bracket: RecordedTrigger, request: GttRequest, attempt: PlaceAttempt) -> bool:
        try:
            exit_id = self.broker.place_gtt(request)
        except InputRejected as exc:
            why = f"the broker refused the exit: {exc.message}; place the stop-loss and target yourself"
            self.driver.failed(attempt, False, (DONE, 400, {"status": "error", "message": why}), exit_failed=why)
            log.error("bracket %s: the exit was refused: %s", bracket.trigger_id, exc.message)
            return False
        except BrokerError as exc:
            found = self._found_despite(exc, request, attempt)
            if found is not None:
                return self.driver.recorded(attempt, [(found, EXIT_ROLE, "SCHEDULED")], answer=_placed(found),
                                            note="found at the broker after a lost answer")
            self.driver.failed(attempt, exc.may_have_reached, (FAULT, exc.http_status or 502, None))
            raise
        self.driver.recorded(attempt, [(exit_id, EXIT_ROLE, "SCHEDULED")], answer=_placed(exit_id))
        log.info("bracket %s: entry filled; exit OCO %s placed", bracket.trigger_id, exit_id)
        return True

    def _found_despite(self, exc: BrokerError, request: GttRequest, attempt: PlaceAttempt) -> str | None:
        if not exc.may_have_reached:
            return None
        try:
            found = self.driver.finder.find(request, attempt.started_at, attempt_id=attempt.id)
        except BrokerError:
            return None
        return found.gtt_id if found is not None else None

    def _stale(self, record: Snapshot) -> bool:
        return gone_quiet(record, self.driver.clock.now(), self.driver.stale_after)

    def _open_attempt(self, record_id: int) -> bool:
        attempt = self._attempts.open_of(record_id)
        return attempt is not None and attempt.state in UNSETTLED

    def _settle_legacy_claim(self, bracket: RecordedTrigger, claimed_at: datetime) -> bool:
        """A `placing` claim written by a version before the attempts: found at the broker, it is
        the exit; not there, it is dropped and the exit placed as an attempt from the next pass."""
        found = self.driver.finder.find_any(exit_request(bracket, self._product(bracket)), claimed_at)
        if found is None:
            self.exits.forget_legacy_claim(bracket.trigger_id)
            return False
        legacy = self.exits.get(bracket.trigger_id)
        with self.driver.store.unit_of_work() as uow:
            uow.exit_settled(bracket.trigger_id, state=PLACED, entry_gtt_id=legacy.entry_gtt_id,
                             entry_order_id=legacy.entry_order_id, exit_gtt_id=found.gtt_id,
                             message="found at the broker after a lost answer")
        return True

    def _product(self, bracket: RecordedTrigger) -> str:
        entry = self.broker.get_gtt(bracket.broker_ids[0])
        return entry.product if entry is not None else bracket.product

    def _refuse(self, bracket: RecordedTrigger, order_id: str | None, why: str) -> bool:
        message = f"{why}; no exit was placed"
        if self.exits.refused(bracket.trigger_id, entry_gtt_id=bracket.broker_ids[0], entry_order_id=order_id,
                              holder=self._records.holder, now=self.driver.clock.now(), message=message):
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
        record = self._records.existing(EXIT_OWNER, _exit_key(bracket)) if claim is None else None
        if record is not None and self._open_attempt(record.id):
            exit_stage["state"] = PLACING
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


def _exit_key(bracket: RecordedTrigger) -> str:
    return f"exit:{bracket.trigger_id}"


def _placed(exit_id: str) -> tuple[int, dict]:
    return 200, {"status": "success", "trigger_id": exit_id}
