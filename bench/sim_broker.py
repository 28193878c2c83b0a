"""The deterministic simulation's broker (bench/simulate.py): the `Broker` interface over a dict,
on the simulation's clock, with the faults exactly once must survive injected into any write.

A fault is armed for the next write call (place or cancel):
- `before`:  no answer, nothing done (a timeout before the broker did the work);
- `lost`:    the work done, the answer lost;
- `late`:    no answer now, the work done up to 60 s later (the broker still working);
- `5xx`:     the work done, then a 500;
- `429`:     refused, nothing done.
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

from openalgo_gtt.brokers.errors import BrokerFailure, BrokerTimeout, InputRejected, RateLimited
from openalgo_gtt.brokers.pacing import SlotHold, unpaced
from openalgo_gtt.domain.clock import ManualClock
from openalgo_gtt.domain.model import CANCELLED, SCHEDULED, TRIGGERED, BrokerGtt, GttRequest, Quote, RuleState

FAULTS = ("before", "lost", "late", "5xx", "429")


class Crash(BaseException):
    """The process stops: nothing after it runs (a BaseException, so no handler takes it)."""


class SimBroker:
    name = "memory"

    def __init__(self, clock: ManualClock, rng):
        self.clock = clock
        self.rng = rng
        self.gtts: dict[str, BrokerGtt] = {}
        self._ids = itertools.count(1)
        self.armed: str | None = None  # the fault of the next write
        self.late: list[tuple[object, object]] = []  # (due, work)
        self.dead = lambda: False  # the process calling is dead (set by the simulation)
        self.faults_seen = 0
        self.pacer_full = False  # a burst holds every slot within a caller's patience

    # -- the world moving on its own -----------------------------------------------------------

    def run_due(self) -> None:
        """Late work whose time has come."""
        due = [item for item in self.late if item[0] <= self.clock.now()]
        self.late = [item for item in self.late if item[0] > self.clock.now()]
        for _, work in due:
            try:
                work()
            except InputRejected:
                pass  # a late cancel or modify of a GTT that has since left: nothing to do

    def fire(self, gtt_id: str) -> None:
        gtt = self.gtts[gtt_id]
        rules = tuple(replace(r, status=TRIGGERED, order_id=f"ORD-{gtt_id}") if r.status == SCHEDULED else r
                      for r in gtt.rules)
        self.gtts[gtt_id] = replace(gtt, rules=rules)

    def live(self) -> list[BrokerGtt]:
        return [gtt for gtt in self.gtts.values() if gtt.can_fire]

    # -- the Broker interface ------------------------------------------------------------------

    def _write(self, work):
        if self.dead():
            raise Crash()
        fault, self.armed = self.armed, None
        if fault is not None:
            self.faults_seen += 1
        if fault == "429":
            raise RateLimited("too many requests", http_status=429, may_have_reached=False)
        if fault == "before":
            raise BrokerTimeout("no answer", may_have_reached=True)
        if fault == "late":
            from datetime import timedelta

            self.late.append((self.clock.now() + timedelta(seconds=self.rng.uniform(0.1, 60)), work))
            raise BrokerTimeout("no answer (the broker is still working)", may_have_reached=True)
        result = work()
        if fault == "lost":
            raise BrokerTimeout("the answer was lost", may_have_reached=True)
        if fault == "5xx":
            raise BrokerFailure("internal server error", http_status=500, may_have_reached=True)
        return result

    def place_gtt(self, request: GttRequest) -> str:
        def work():
            gtt_id = f"GTT-S{next(self._ids):06d}"
            self.gtts[gtt_id] = self._gtt(gtt_id, request)
            return gtt_id
        return self._write(work)

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        def work():
            old = self._live(gtt_id)
            self.gtts[gtt_id] = self._gtt(gtt_id, request, created_at=old.created_at)
            return gtt_id
        return self._write(work)

    def cancel_gtt(self, gtt_id: str) -> str:
        def work():
            gtt = self._live(gtt_id)
            self.gtts[gtt_id] = replace(gtt, rules=tuple(replace(r, status=CANCELLED) for r in gtt.rules))
            return gtt_id
        return self._write(work)

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        if self.dead():
            raise Crash()
        return self.gtts.get(gtt_id)

    def list_gtts(self) -> list[BrokerGtt]:
        if self.dead():
            raise Crash()
        return list(self.gtts.values())

    def hold_order_slots(self, calls: int, within: float | None) -> SlotHold | None:
        """A burst has taken every slot within reach (`pacer_full`): the place is queued."""
        return None if self.pacer_full and within is not None else unpaced()

    def quotes(self, instrument_keys) -> dict[str, Quote]:
        return {key: Quote(key, Decimal("100"), Decimal("100")) for key in instrument_keys}

    def _live(self, gtt_id: str) -> BrokerGtt:
        gtt = self.gtts.get(gtt_id)
        if gtt is None or not gtt.can_fire:
            raise InputRejected(f"GTT {gtt_id} is not live", http_status=400, may_have_reached=False)
        return gtt

    def _gtt(self, gtt_id: str, request: GttRequest, created_at=None) -> BrokerGtt:
        rules = tuple(RuleState(r.strategy, r.trigger_type, r.trigger_price, request.transaction_type, SCHEDULED)
                      for r in request.rules)
        return BrokerGtt(gtt_id, request.type, request.instrument_key, request.instrument_key.split("|")[0],
                         "IDEA", request.quantity, request.product, rules, created_at or self.clock.now())
