"""Sending a place attempt's broker calls: one GTT, or an OCO's two legs as one (both, or
neither). The live request (services/place.py) and the queue of a burst's places
(services/place_queue.py) both send through here, so a place is sent the same way whoever sends it.
"""
from __future__ import annotations

import logging

from openalgo_gtt.brokers import deadline as broker_deadline
from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, PacingTimeout, RateLimited
from openalgo_gtt.domain.model import SCHEDULED, GttRequest
from openalgo_gtt.domain.oco import LOWER, UPPER
from openalgo_gtt.domain.place_attempt import PlaceAttempt
from openalgo_gtt.services.attempts import AttemptDriver
from openalgo_gtt.services.intent import Legs

log = logging.getLogger(__name__)

# A broker 429 means nothing was placed: try again while the caller still waits (TradingView
# gives up after 3 seconds).
RATE_LIMIT_RETRY_BUDGET = 2.0
RATE_LIMIT_RETRY_PAUSE = 0.4


class PlaceSender:
    def __init__(self, broker: Broker, driver: AttemptDriver, *, lookup_budget: float):
        self.broker = broker
        self.driver = driver
        self.clock = driver.clock
        # An ambiguous place is looked up at the broker before answering only while this much
        # time has passed since it began; later, the answer is "unknown" and a retry reconciles.
        self.lookup_budget = lookup_budget

    def send(self, requests: list[GttRequest], roles: list[str | None], attempt: PlaceAttempt) -> Legs:
        """The attempt's GTT (or pair) at the broker: its legs, or a BrokerError."""
        if len(requests) == 2:
            return self._place_pair(requests[0], requests[1], attempt)
        return [(self._place_one(requests[0], attempt), roles[0], SCHEDULED)]

    def _send_place(self, request: GttRequest) -> str:
        """One place, retried on a broker 429 (nothing was placed) within the caller's patience."""
        deadline = self.clock.monotonic() + broker_deadline.bounded(RATE_LIMIT_RETRY_BUDGET)
        while True:
            try:
                return self.broker.place_gtt(request)
            except RateLimited as exc:
                if isinstance(exc, PacingTimeout) or self.clock.monotonic() + RATE_LIMIT_RETRY_PAUSE > deadline:
                    raise
                self.clock.sleep(RATE_LIMIT_RETRY_PAUSE)

    def _place_one(self, request: GttRequest, attempt: PlaceAttempt) -> str:
        try:
            return self._send_place(request)
        except BrokerError as exc:
            found = self._found_despite(exc, request, attempt)
            if found is not None:
                return found
            # Not there (yet) proves nothing: the broker may still be doing the work. The attempt
            # is SETTLING (intent and trade kept) until its window has passed.
            raise

    def _found_despite(self, exc: BrokerError, request: GttRequest, attempt: PlaceAttempt) -> str | None:
        """The GTT a place that failed with `exc` created after all (its answer lost or garbled
        after the broker did the work), when there is time to ask what the broker holds."""
        if not exc.may_have_reached or (self.clock.now() - attempt.started_at).total_seconds() >= self.lookup_budget:
            return None
        try:
            found = self.driver.finder.find(request, attempt.started_at, attempt_id=attempt.id)
        except BrokerError:
            return None  # still unknown
        if found is not None:
            log.warning("place answered %s but the GTT %s exists: treated as placed", exc, found.gtt_id)
            return found.gtt_id
        return None

    def _place_pair(self, lower: GttRequest, upper: GttRequest, attempt: PlaceAttempt) -> Legs:
        """Both OCO legs, or neither: a failed second leg takes the first one down with it,
        unless the broker made it after all (found, the pair is placed)."""
        lower_id = self._place_one(lower, attempt)
        try:
            upper_id = self._send_place(upper)
        except BrokerError as exc:
            found = self._found_despite(exc, upper, attempt)
            if found is not None:
                return [(lower_id, LOWER, SCHEDULED), (found, UPPER, SCHEDULED)]
            undone = self.driver.finder.withdraw(lower_id)
            # Not found, the upper leg may still appear: the pair stays settling, and whoever
            # finds the leg later withdraws it (half a pair is never recorded).
            if undone and not exc.may_have_reached:
                exc.may_have_reached = False  # certainly nothing left: REFUSED, the trade given back
            elif not undone:
                exc.message += ("; the stop-loss leg could not be withdrawn: check Upstox's GTT list "
                                f"for {lower_id}")
                # Half a pair may be live: the attempt settles, so the watcher withdraws it and
                # gives the trade back.
                exc.may_have_reached = True
            raise
        return [(lower_id, LOWER, SCHEDULED), (upper_id, UPPER, SCHEDULED)]
