"""Finding at the broker a GTT whose answer was lost: how an attempt whose outcome is unknown
(services/attempts.py) and a staged bracket's exit (services/staged_bracket.py) learn what the
broker did, without ever claiming a GTT that is another place's, or one placed by hand."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Sequence

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.model import BrokerGtt, GttRequest
from openalgo_gtt.domain.place_attempt import AttemptState, PlaceAttempt, quiet
from openalgo_gtt.store.request_records import holder_alive
from openalgo_gtt.store.unit_of_work import Store

log = logging.getLogger(__name__)

# How far before the attempt began a GTT's creation time may be and still be "ours": the clock
# skew allowed between this host (keep it NTP-synced) and the broker. Wider, and a GTT created
# in the Upstox app a second before a failed place would be claimed as the place's own.
CLOCK_SKEW = timedelta(seconds=0.5)


def could_own(attempt: PlaceAttempt, gtt: BrokerGtt) -> bool:
    """Whether `attempt` could have created `gtt`: one of its requests matches it, and it was
    created after the attempt began (less the clock skew)."""
    if gtt.created_at is not None and gtt.created_at < attempt.started_at - CLOCK_SKEW:
        return False
    return any(gtt.matches(GttRequest.from_json(r)) for r in attempt.plan["requests"])


def _yields_to(rival: PlaceAttempt, rival_running: bool, gtt: BrokerGtt, since: datetime,
               attempt_id: int | None) -> bool:
    """Whether an attempt looking for `gtt` (begun at `since`, id `attempt_id`) must leave it to
    `rival`: the rival could own it and is still sending (its broker call may answer with this
    very GTT), or its answer was lost too (or its process stopped mid-call) and it began first."""
    if not could_own(rival, gtt):
        return False
    if rival_running:
        return True
    return attempt_id is None or (rival.started_at, rival.id) < (since, attempt_id)


MAX_WITHDRAWN_KEPT = 10_000


class BrokerFinder:
    def __init__(self, broker: Broker, store: Store, stale_after: timedelta):
        self.broker = broker
        self.store = store
        self.stale_after = stale_after  # a SENDING attempt this quiet has stopped: it answers nobody
        # GTTs this process withdrew: a listing read before the withdraw still shows them live,
        # and one must never be recorded (a pass settles several attempts on one listing).
        self._withdrawn: set[str] = set()

    def running(self, attempt: PlaceAttempt, now: datetime) -> bool:
        """Whether an attempt's broker call may still be answered in its own process."""
        return attempt.state == AttemptState.SENDING and not quiet(attempt, now, self.stale_after,
                                                                   holder_alive(attempt.holder))

    def find(self, request: GttRequest, since: datetime, listed: list[BrokerGtt] | None = None, *,
             attempt_id: int | None = None, contenders: Sequence[PlaceAttempt] | None = None) -> BrokerGtt | None:
        """The broker GTT matching `request`, created since the attempt began (`since`, less the
        clock skew), that the gateway does not know yet. A cancelled one is not (a leg the
        gateway withdrew, or one cancelled in the app), nor one the late pass took for another
        attempt (cancelled late: it may have fired before the cancel reached it, so it is not
        marked cancelled). Of two such, the earliest is taken.

        Nor is a GTT another open attempt could own (`contenders`, by default every unsettled
        attempt but `attempt_id`): one still sending may yet be answered with that GTT's id, and
        of two whose answers were both lost, the one that began first takes it. So two requests
        for the same order never both claim one GTT."""
        listed = self.broker.list_gtts() if listed is None else listed
        candidates = [gtt for gtt in listed
                      if gtt.matches(request) and not gtt.cancelled
                      and (gtt.created_at is None or gtt.created_at >= since - CLOCK_SKEW)]
        if not candidates:
            return None
        # Read after the listing and before the known ids: an attempt that could own a listed
        # GTT was written before its broker call, and one that has since recorded its GTT left
        # SENDING in the same commit, so the GTT is then known.
        if contenders is None:
            contenders = self.store.attempts.unsettled()
        now = self.store.clock.now()
        rivals = [(a, self.running(a, now)) for a in contenders if a.id != attempt_id]
        known = self.store.orders.known_broker_ids([gtt.gtt_id for gtt in candidates])
        known |= self.store.attempts.cancelled_late_ids() | self._withdrawn
        fresh = sorted((gtt for gtt in candidates if gtt.gtt_id not in known
                        and not any(_yields_to(rival, running, gtt, since, attempt_id) for rival, running in rivals)),
                       key=lambda gtt: gtt.created_at or since)
        if len(fresh) > 1:
            log.warning("%d unknown GTTs match one lost place (%s); taking the earliest, %s",
                        len(fresh), ", ".join(gtt.gtt_id for gtt in fresh), fresh[0].gtt_id)
        return fresh[0] if fresh else None

    def find_any(self, request: GttRequest, since: datetime, listed: list[BrokerGtt] | None = None) -> BrokerGtt | None:
        """Every unknown match, whoever else could own it (a staged exit, the late pass)."""
        return self.find(request, since, listed, contenders=())

    def withdraw(self, gtt_id: str) -> bool:
        """Cancel a GTT the gateway just placed (half a pair); True when it is certainly gone.
        One the broker says it cancelled is never found again by this process (`_withdrawn`);
        one whose cancel failed, or that the broker does not list (it may yet be made late), stays
        findable, to be recorded or withdrawn on a later pass."""
        try:
            self.broker.cancel_gtt(gtt_id)
        except BrokerError as exc:
            log.error("could not withdraw GTT %s: %s", gtt_id, exc)
            try:
                gone = self.broker.get_gtt(gtt_id)
            except BrokerError:
                return False
            if gone is None:
                return True
            if not gone.cancelled:
                return False
        if len(self._withdrawn) >= MAX_WITHDRAWN_KEPT:
            self._withdrawn.clear()  # listings read since show them cancelled
        self._withdrawn.add(gtt_id)
        return True
