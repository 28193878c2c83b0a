"""An in-memory broker for service-level tests: the `Broker` interface over a dict, with the
faults exactly-once must survive (a lost answer after the work was done, a failure before it)."""
from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

from openalgo_gtt.brokers.errors import BrokerTimeout, InputRejected
from openalgo_gtt.brokers.pacing import SlotHold, unpaced
from openalgo_gtt.domain.model import CANCELLED, SCHEDULED, BrokerGtt, GttRequest, Quote, RuleState


class MemoryBroker:
    name = "memory"

    def __init__(self, clock=None):
        self.clock = clock  # the gateway's ManualClock, when the test moves time
        self.gtts: dict[str, BrokerGtt] = {}
        self.place_calls = 0
        self._ids = itertools.count(1)
        # Faults for the next place: "lost" does the work and loses the answer; "before" fails
        # with an unknown outcome without doing the work; "late" fails the same way but does the
        # work when the test calls `finish_late()` (a broker still working after the timeout).
        self.next_place_faults: list[str] = []
        self._late: list[GttRequest] = []
        self.list_fails = False
        self.pacer_full = False  # hold_order_slots finds no room in time: places are queued

    def place_gtt(self, request: GttRequest) -> str:
        self.place_calls += 1
        fault = self.next_place_faults.pop(0) if self.next_place_faults else None
        if fault in ("before", "late"):
            if fault == "late":
                self._late.append(request)
            raise BrokerTimeout("no answer", may_have_reached=True)
        gtt_id = f"GTT-M{next(self._ids):06d}"
        self.gtts[gtt_id] = self._gtt(gtt_id, request)
        if fault == "lost":
            raise BrokerTimeout("the answer was lost", may_have_reached=True)
        return gtt_id

    def age(self, by) -> None:
        """Every GTT created `by` (a timedelta) earlier: time passing, for a test that moves the
        gateway's own records back the same way."""
        self.gtts = {gtt_id: replace(gtt, created_at=gtt.created_at - by) for gtt_id, gtt in self.gtts.items()}

    def finish_late(self) -> list[str]:
        """The broker finally does the work of every "late" place: their GTTs appear now."""
        ids = []
        for request in self._late:
            gtt_id = f"GTT-M{next(self._ids):06d}"
            self.gtts[gtt_id] = self._gtt(gtt_id, request)
            ids.append(gtt_id)
        self._late.clear()
        return ids

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        old = self._live(gtt_id)
        self.gtts[gtt_id] = self._gtt(gtt_id, request, created_at=old.created_at)
        return gtt_id

    def cancel_gtt(self, gtt_id: str) -> str:
        gtt = self._live(gtt_id)
        rules = tuple(RuleState(r.strategy, r.trigger_type, r.trigger_price, r.transaction_type, CANCELLED)
                      for r in gtt.rules)
        self.gtts[gtt_id] = BrokerGtt(gtt.gtt_id, gtt.type, gtt.instrument_key, gtt.segment, gtt.trading_symbol,
                                      gtt.quantity, gtt.product, rules, gtt.created_at)
        return gtt_id

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        return self.gtts.get(gtt_id)

    def list_gtts(self) -> list[BrokerGtt]:
        if self.list_fails:
            raise BrokerTimeout("list timed out", may_have_reached=False)
        return list(self.gtts.values())

    def hold_order_slots(self, calls: int, within: float | None) -> SlotHold | None:
        """No room within `within` while `pacer_full` is set (a burst has taken every slot)."""
        return None if self.pacer_full and within is not None else unpaced()

    def quotes(self, instrument_keys) -> dict[str, Quote]:
        return {key: Quote(key, Decimal("100"), Decimal("100")) for key in instrument_keys}

    def live(self) -> list[BrokerGtt]:
        return [gtt for gtt in self.gtts.values() if gtt.can_fire]

    def _live(self, gtt_id: str) -> BrokerGtt:
        gtt = self.gtts.get(gtt_id)
        if gtt is None or not gtt.can_fire:
            raise InputRejected(f"GTT {gtt_id} is not live", http_status=400, may_have_reached=False)
        return gtt

    def _gtt(self, gtt_id: str, request: GttRequest, created_at: datetime | None = None) -> BrokerGtt:
        rules = tuple(RuleState(r.strategy, r.trigger_type, r.trigger_price, request.transaction_type, SCHEDULED)
                      for r in request.rules)
        return BrokerGtt(gtt_id, request.type, request.instrument_key, request.instrument_key.split("|")[0],
                         "IDEA", request.quantity, request.product, rules,
                         created_at or (self.clock.now() if self.clock else datetime.now(timezone.utc)))
