"""GTTs a broker created after their place had lapsed (services/place.py `lapse`).

A place whose outcome stayed unknown for the whole settling window gave its trade back, and its
request may have been placed afresh. A broker can still create the GTT after that. The lease
holder's poll looks for such very late GTTs while any lapsed place is younger than
`LATE_HORIZON` (one list call a pass, none when there is nothing to look for) and settles each:

- half of an OCO pair: withdrawn (half a pair is worse than none);
- the request was placed afresh: the late GTT is a duplicate and is cancelled at once;
- otherwise it is the request's GTT: recorded and counted, or, with the day's limit used up,
  cancelled (the limit is never exceeded at the broker).

Each outcome leaves an audit row. A GTT that another running place could be about to record is
left for the next pass: its intent is written before its broker call, so reading the intents
after the listing sees every place that could own a listed GTT.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.model import SCHEDULED, BrokerGtt, EventKind, GttRequest, TriggerStatus
from openalgo_gtt.domain.notifications import trigger_event
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.services.answers import answer_for
from openalgo_gtt.services.audit import AuditTrail
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.place import PlaceGtt, Placed, could_own, intent_trigger, trigger_id_of
from openalgo_gtt.services.trade_limit import DailyTradeLimit
from openalgo_gtt.store.lapsed_places import Lapsed
from openalgo_gtt.store.request_records import DONE, Snapshot
from openalgo_gtt.store.unit_of_work import Store

log = logging.getLogger(__name__)

LATE_HORIZON = timedelta(minutes=15)
FOUND_LATE = "found at the broker after its place had lapsed"


class _LimitUsedUp(Exception):
    """Rolls back a late GTT's unit of work: the day has no trade left for it."""


class _Retaken(Exception):
    """Rolls back a late GTT's unit of work: its place was settled, or its request taken, meanwhile."""


class LateGtts:
    def __init__(self, broker: Broker, store: Store, place: PlaceGtt, limit: DailyTradeLimit, audit: AuditTrail,
                 notifications: Notifications | None = None):
        self._broker = broker
        self._notifications = notifications
        self._store = store
        self._place = place
        self._limit = limit
        self._audit = audit

    def settle(self) -> list[str]:
        """One pass; returns what was done, one line per late GTT settled."""
        lapsed = self._store.lapsed.open()  # a read: an idle poll writes nothing here
        if any(place.lapsed_at < utcnow() - LATE_HORIZON for place in lapsed):
            self._store.lapsed.expire(LATE_HORIZON)
            lapsed = self._store.lapsed.open()
        if not lapsed:
            return []
        listed = self._broker.list_gtts()
        intents = self._store.requests.with_intent()
        done = []
        for place in lapsed:
            try:
                outcome = self._settle_one(place, listed, intents)
            except BrokerError as exc:  # retried next pass
                log.warning("could not settle the late GTT of lapsed place %s: %s", place.id, exc)
                continue
            if outcome:
                done.append(outcome)
        return done

    def _settle_one(self, place: Lapsed, listed: list[BrokerGtt], intents: list[Snapshot]) -> str | None:
        requests = [GttRequest.from_json(r) for r in place.plan["requests"]]
        # Every unknown match, running places' included: _another_place_may_own decides below.
        found = [self._place.find_placed(r, place.attempt_started_at, listed, contenders=()) for r in requests]
        present = [gtt for gtt in found if gtt is not None]
        if not present:
            return None
        if any(self._another_place_may_own(gtt, place, intents) for gtt in present):
            return None
        if len(present) < len(found):
            return self._cancel(place, present, "half of an OCO pair found late: withdrawn")
        record = next((s for s in intents if s.id == place.record_id), None)
        if record is not None:
            return None  # the request is being placed again right now: judged once that is settled
        # Kept while this place is open (request_records.purge_expired), so it tells how the
        # request was last answered.
        record = self._store.requests.get(place.record_id)
        if record is not None and record.state == DONE:
            # Sent again after the lapse: placed afresh (the late GTT is a duplicate), or refused
            # (its caller was told it failed, so a GTT it believes absent is not left live).
            why = ("the request had been placed afresh: the late GTT is a duplicate and was cancelled"
                   if record.response_status == 200 else
                   f"the request was refused (HTTP {record.response_status}) when sent again after its place "
                   "lapsed: the late GTT was cancelled")
            return self._cancel(place, present, why)
        return self._count(place, present, record)

    def _another_place_may_own(self, gtt: BrokerGtt, place: Lapsed, intents: list[Snapshot]) -> bool:
        """Whether a place now running (or settling) could have created `gtt`: then it is theirs
        to record, not ours to cancel or count."""
        return any(intent.id != place.record_id and intent.plan and could_own(intent, gtt) for intent in intents)

    def _cancel(self, place: Lapsed, gtts: list[BrokerGtt], why: str) -> str:
        for gtt in gtts:
            self._broker.cancel_gtt(gtt.gtt_id)  # a failure leaves the place open: retried next pass
        ids = ", ".join(gtt.gtt_id for gtt in gtts)
        with self._store.unit_of_work() as uow:
            resolved = uow.resolve_lapsed(place.id, f"cancelled {ids}: {why}")
            if resolved:
                self._tell(uow, place, ids, f"cancelled at once: {why}")
        if resolved:
            self._write_audit(place, f"GTT {ids} {FOUND_LATE}; {why}", None)
            log.warning("late GTT %s of request %s: %s", ids, place.plan["order"].get("request_id"), why)
        return f"cancelled {ids}"

    def _count(self, place: Lapsed, gtts: list[BrokerGtt], record: Snapshot | None) -> str | None:
        """The request's own GTT: recorded and counted in one unit of work, its request answered
        with it; or cancelled when the day's limit is used up."""
        intent, order = place.plan, place.plan["order"]
        legs = [(gtt.gtt_id, role, SCHEDULED) for gtt, role in zip(gtts, intent["roles"])]
        trigger_id = trigger_id_of(intent, legs)
        prices = {k: Decimal(v) for k, v in intent["prices"].items()}
        try:
            with self._store.unit_of_work() as uow:
                count = uow.take_trade(self._limit.today(), self._limit.limit)
                if count is None:
                    raise _LimitUsedUp()
                render = answer_for(record.endpoint if record is not None else "place")
                answer = render(Placed(trigger_id, prices, (f"GTT {FOUND_LATE}",), count))
                if not uow.resolve_lapsed(place.id, f"counted as {trigger_id}") or (
                        record is not None
                        and not uow.answer_lapsed(place.record_id, {**answer, "request_id": order.get("request_id")})):
                    raise _Retaken()
                uow.add_trigger(dict(trigger_id=trigger_id, broker_ids=[leg[0] for leg in legs],
                                     status=TriggerStatus.ACTIVE, placed_at=utcnow(), **order), legs)
                self._tell(uow, place, trigger_id, f"recorded and counted (trade {count} today)")
        except _LimitUsedUp:
            return self._cancel(place, gtts, f"the daily trade limit ({self._limit.limit}) was used up")
        except _Retaken:
            return None  # settled by another process, or the request is being placed again: next pass
        self._write_audit(place, f"GTT {trigger_id} {FOUND_LATE}; recorded and counted (trade {count} today)",
                          trigger_id)
        log.warning("late GTT %s of request %s recorded and counted", trigger_id, order.get("request_id"))
        return f"counted {trigger_id}"

    def _tell(self, uow, place: Lapsed, trigger_id: str, what: str) -> None:
        """The trader hears of it (the `found_late` event), in the unit of work that settles it."""
        if self._notifications is not None:
            self._notifications.emit(uow, trigger_event(EventKind.FOUND_LATE, utcnow(),
                                                        intent_trigger(place.plan, trigger_id), f"{FOUND_LATE}: {what}"))

    def _write_audit(self, place: Lapsed, what: str, trigger_id: str | None) -> None:
        order = place.plan["order"]
        self._audit.write(AuditEntry(
            request_id=str(uuid.uuid4()), created_at=utcnow(), method="POST", endpoint="(late GTT)",
            client_addr=None, api_key_name=order.get("api_key_name"), request_body=None,
            response_body={"trigger_id": trigger_id, "original_request_id": order.get("request_id")},
            http_status=200, latency_ms=0.0, error=what,
        ))
