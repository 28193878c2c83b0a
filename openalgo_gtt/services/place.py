"""Place a GTT, exactly once: the one use case that crosses every part of the gateway.

The walk runs one way. The order is planned (services/planner.py); the intent (what will be sent,
and how to find it again) and the day's trade are written in one unit of work; the broker is
called; the caller is answered; then the GTT, the answer kept for duplicates and the audit row
are committed in a second unit of work, after the answer has gone. The intent already makes the
place recoverable, so a crash between the two is settled by services/recovery.py.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Callable, Sequence

from openalgo_gtt.brokers import deadline as broker_deadline
from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, PacingTimeout, RateLimited
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.errors import TradeLimitReached
from openalgo_gtt.domain.gtt import BRACKET, OCO, Plan
from openalgo_gtt.domain.model import (
    SCHEDULED, SINGLE, BrokerGtt, EventKind, GttRequest, TriggerKind, TriggerStatus,
)
from openalgo_gtt.domain.notifications import trigger_event
from openalgo_gtt.domain.oco import LOWER, UPPER, OcoPlan
from openalgo_gtt.domain.symbols import InstrumentInfo
from openalgo_gtt.services.answers import ApiError, placed_answer
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.services.exactly_once import Attempt, ExactlyOnce
from openalgo_gtt.services.in_flight import InFlight
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.planner import Order, Planner
from openalgo_gtt.services.trade_limit import DailyTradeLimit, Reservation
from openalgo_gtt.store.request_records import PENDING, Snapshot
from openalgo_gtt.store.unit_of_work import Store

log = logging.getLogger(__name__)

BOOK_TRIGGER_TYPE = {SINGLE: TriggerKind.SINGLE, BRACKET: TriggerKind.BRACKET, OCO: TriggerKind.TWO_LEG}
# How far before the attempt began a GTT's creation time may be and still be "ours": the clock
# skew allowed between this host (keep it NTP-synced) and the broker. Wider, and a GTT created
# in the Upstox app a second before a failed place would be claimed as the place's own.
CLOCK_SKEW = timedelta(seconds=0.5)
# A broker 429 means nothing was placed: try again while the caller still waits (TradingView
# gives up after 3 seconds).
RATE_LIMIT_RETRY_BUDGET = 2.0
RATE_LIMIT_RETRY_PAUSE = 0.4
# A retry of a place still settling looks at the broker, waits this long, and looks once more
# before it answers 503: short enough for TradingView's 3 seconds.
SETTLE_RETRY_WAIT = 1.0

Legs = list[tuple[str, str, str]]  # (broker GTT id, role, broker status)


@dataclass(frozen=True)
class Placed:
    trigger_id: str
    prices: dict[str, Decimal]
    warnings: tuple[str, ...] = ()
    trade_count: int | None = None


class Settling(ApiError):
    """A retry of a place whose earlier attempt may still be completing at the broker: within
    the settling window, not finding its GTT proves nothing, so nothing is placed again."""

    may_have_reached = True  # the earlier attempt's outcome is still unknown: its intent is kept

    def __init__(self, retry_after: int):
        super().__init__(503, "an earlier attempt of this request may still be completing at the broker; "
                              f"it is not placed again while it settles: retry in {retry_after} s",
                         retry_after=retry_after, outcome_unknown=True)


def trigger_id_of(intent: dict, legs: Legs) -> str:
    first = legs[0][0]
    return "OCO-" + first.removeprefix("GTT-") if intent["order"]["trigger_type"] == TriggerKind.TWO_LEG else first


def _intent(order: Order, instrument: InstrumentInfo, plan: Plan | OcoPlan, ctx: RequestContext) -> dict:
    """Everything needed to send, find again and record this place: written before the broker
    call, so a crash or a lost answer can be reconciled."""
    is_oco = isinstance(plan, OcoPlan)
    requests = [plan.lower.request, plan.upper.request] if is_oco else [plan.request]
    role = {OCO: None, BRACKET: "bracket"}.get(order.intent.trigger_type, "single")
    return {
        "requests": [r.to_json() for r in requests],
        "roles": [LOWER, UPPER] if is_oco else [role],
        "prices": {k: str(v) for k, v in plan.prices.items()},
        "order": {
            "instrument_key": instrument.instrument_key, "symbol": instrument.symbol,
            "exchange": instrument.exchange, "trigger_type": BOOK_TRIGGER_TYPE[order.intent.trigger_type],
            "action": requests[0].transaction_type, "product": order.intent.product,
            "quantity": requests[0].quantity, "legs": jsonable(plan.legs), "strategy": order.strategy,
            "request_id": ctx.request_id, "api_key_name": ctx.api_key_name,
        },
    }


def intent_trigger(intent: dict, trigger_id: str | None) -> SimpleNamespace:
    """A place's intent as the notification events read a trigger."""
    order = intent["order"]
    return SimpleNamespace(trigger_id=trigger_id or "", symbol=order["symbol"], exchange=order["exchange"],
                           action=order["action"], quantity=order["quantity"], legs=order["legs"])


def jsonable(legs) -> list[dict]:
    """Legs for the JSON column: Decimals as strings keep every paisa exact."""
    return [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in leg.items()} for leg in legs]


def could_own(intent: Snapshot, gtt: BrokerGtt) -> bool:
    """Whether the open place `intent` could have created `gtt`: one of its requests matches it,
    and it was created after that attempt began (less the clock skew)."""
    started = intent.attempt_started_at
    if started is not None and gtt.created_at is not None and gtt.created_at < started - CLOCK_SKEW:
        return False
    return any(gtt.matches(GttRequest.from_json(r)) for r in intent.plan["requests"])


def _yields_to(rival: Snapshot, gtt: BrokerGtt, since: datetime, record_id: int | None) -> bool:
    """Whether a place looking for `gtt` (begun at `since`, record `record_id`) must leave it to
    `rival`: the rival could own it and is still running (its broker call may answer with this
    very GTT), or its answer was lost too and it began first."""
    if not could_own(rival, gtt):
        return False
    if rival.state == PENDING:
        return True
    rival_rank = (rival.attempt_started_at or since, rival.id)
    return record_id is None or rival_rank < (since, record_id)


class PlaceGtt:
    def __init__(self, broker: Broker, planner: Planner, store: Store, limit: DailyTradeLimit,
                 exactly_once: ExactlyOnce, in_flight: InFlight, lookup_budget: float = 5.0,
                 settle_seconds: float = 10.0, notifications: Notifications | None = None):
        self.broker = broker
        self.planner = planner
        self.store = store
        self.limit = limit
        self.exactly_once = exactly_once
        self.in_flight = in_flight
        # An ambiguous place is looked up at the broker before answering only while this much
        # time has passed since it began; later, the answer is "unknown" and a retry reconciles.
        self.lookup_budget = lookup_budget
        # How long after an ambiguous place began its GTT may still appear at the broker: until
        # then the place is settling (not absent), and a retry is not placed again.
        self.settle = timedelta(seconds=settle_seconds)
        self.notifications = notifications

    def __call__(self, ctx: RequestContext, order: Order, body: dict, idempotency_key: object, *,
                 endpoint: str = "place", render: Callable[[Placed], dict] = placed_answer) -> tuple[dict, int]:
        """Place `order` at most once for its key; the answer body (worded by `render`) and its
        HTTP status."""
        key = self.exactly_once.key(ctx, endpoint, body, idempotency_key, dedupe=True)
        return self.exactly_once.place(ctx, key, lambda attempt: self.place(order, ctx, attempt), render)

    def place(self, order: Order, ctx: RequestContext, attempt: Attempt) -> Placed:
        if attempt.retry and attempt.plan:
            # An earlier attempt's outcome is unknown: settle it before anything else (planning
            # anew may fail now, say without a last price, and must not drop the earlier intent).
            recovered = self._settle_earlier(attempt)
            if recovered is not None:
                return recovered
        instrument, plan = self.planner.plan(order)
        started = utcnow()
        intent = _intent(order, instrument, plan, ctx)
        reservation = self._reserve(order, intent, attempt, started)
        if isinstance(plan, OcoPlan):
            legs = self._place_pair(plan, reservation, started, attempt.record_id)
        else:
            gtt_id = self._place_one(plan.request, reservation, started, attempt.record_id)
            legs = [(gtt_id, intent["roles"][0], SCHEDULED)]
        placed = Placed(trigger_id_of(intent, legs), plan.prices, plan.warnings, reservation.count)
        # The caller hears first: the intent written before the broker call already makes the
        # place recoverable, so the GTT, the answer kept for duplicates and the audit row are
        # committed just after the answer.
        attempt.answering(placed)
        self.in_flight.hold(placed.trigger_id)
        ctx.after_answer.append(lambda: self._record_answered(intent, legs, attempt, placed.trigger_id))
        return placed

    def _reserve(self, order: Order, intent: dict, attempt: Attempt, started: datetime) -> Reservation:
        """The intent and the day's trade, in one unit of work: a refusal from either leaves neither."""
        day = self.limit.today()
        try:
            with self.store.unit_of_work() as uow:
                attempt.save_intent(uow, intent, day, started)
                return self.limit.take(uow, day, order.force)
        except TradeLimitReached:
            attempt.intent_rolled_back()
            raise TradeLimitReached(self.limit.today_count(), self.limit.limit) from None
        except BaseException:
            attempt.intent_rolled_back()
            raise

    def _record_answered(self, intent: dict, legs: Legs, attempt: Attempt, trigger_id: str) -> None:
        """The GTT, the answer and the audit row in one unit of work; should that fail, each on
        its own (the GTT first: it is what a cancel or the order book needs)."""
        try:
            if not self._record(intent, legs, attempt):
                self._record(intent, legs)
                attempt.close_alone()
        finally:
            self.in_flight.release(trigger_id)

    def _record(self, intent: dict, legs: Legs, attempt: Attempt | None = None) -> bool:
        trigger_id = trigger_id_of(intent, legs)
        try:
            with self.store.unit_of_work() as uow:
                uow.add_trigger(dict(trigger_id=trigger_id, broker_ids=[leg[0] for leg in legs],
                                     status=TriggerStatus.ACTIVE, placed_at=utcnow(), **intent["order"]), legs)
                if self.notifications is not None and self.notifications.sends(EventKind.PLACED):
                    self.notifications.emit(uow, trigger_event(EventKind.PLACED, utcnow(),
                                                               intent_trigger(intent, trigger_id)))
                if attempt is not None:
                    attempt.close(uow)
            return True
        except Exception:  # noqa: BLE001 - the GTT exists at the broker: the caller must hear success
            log.exception("trigger %s was placed but could not be recorded locally", trigger_id)
            return False

    # -- finding a place whose answer was lost ----------------------------------------------

    def _settle_earlier(self, attempt: Attempt) -> Placed | None:
        """A retry of a place whose outcome is unknown: its GTT found at the broker is the
        answer. Within the settling window, not finding it proves nothing: look, wait a moment,
        look again, then answer 503 (the caller retries). After the window the earlier attempt
        lapses: its trade is given back and this retry places afresh (None)."""
        started = attempt.attempt_started_at or utcnow()
        window_ends = started + self.settle
        looked = False
        while True:
            try:
                recovered = self.recover(attempt.plan, started, record_id=attempt.record_id)
            except BrokerError:
                if utcnow() < window_ends:  # could not look: still unknown, still settling
                    raise self._settling(window_ends) from None
                raise
            if recovered is not None:
                return recovered
            if utcnow() >= window_ends:
                break
            budget = broker_deadline.remaining()  # the wait must leave time for a second look
            if looked or (budget is not None and budget < SETTLE_RETRY_WAIT + 0.5):
                raise self._settling(window_ends)
            looked = True
            time.sleep(min(SETTLE_RETRY_WAIT, (window_ends - utcnow()).total_seconds()))
        self.lapse(attempt.record_id, attempt.plan, started, attempt.reserved_day)
        attempt.earlier_lapsed()
        return None

    @staticmethod
    def _settling(window_ends: datetime) -> Settling:
        return Settling(max(1, math.ceil((window_ends - utcnow()).total_seconds())))

    def lapse(self, record_id: int, intent: dict, started: datetime, reserved_day) -> None:
        """Nothing found within the window: give the trade back and keep the intent aside, so a
        GTT the broker creates even later is still matched (services/late_gtts.py)."""
        with self.store.unit_of_work() as uow:
            uow.lapse(record_id, intent, started, reserved_day)
            if self.notifications is not None:
                self.notifications.emit(uow, trigger_event(
                    EventKind.OUTCOME_UNKNOWN, utcnow(), intent_trigger(intent, intent["order"].get("request_id")),
                    f"no GTT at the broker {self.settle.total_seconds():.0f} s after the place began: its trade "
                    "was given back; a retry of the alert places it afresh, and a GTT the broker still creates "
                    "is matched and reported"))
        log.warning("place %s lapsed: no GTT at the broker %.0f s after it began; its trade is given back",
                    intent["order"].get("request_id"), self.settle.total_seconds())

    def recover(self, intent: dict, since: datetime | None, listed: list[BrokerGtt] | None = None, *,
                record_id: int | None = None) -> Placed | None:
        """Find an earlier attempt (of record `record_id`)'s GTTs at the broker: recorded (and a
        success) when all are there; withdrawn when only part of an OCO is; None when nothing was
        placed, or when what is there may be another open place's (decided on a later look)."""
        prices = {k: Decimal(v) for k, v in intent["prices"].items()}
        already = self.store.orders.by_request_id(intent["order"]["request_id"])
        if already is not None:
            return Placed(already.trigger_id, prices, ("answered from an earlier attempt of this request",),
                          self.limit.today_count())
        since = since or utcnow()
        listed = self.broker.list_gtts() if listed is None else listed
        requests = [GttRequest.from_json(r) for r in intent["requests"]]
        found = [self.find_placed(r, since, listed, record_id=record_id) for r in requests]
        if found and all(found):
            legs = [(gtt.gtt_id, role, SCHEDULED) for gtt, role in zip(found, intent["roles"])]
            self._record(intent, legs)
            return Placed(trigger_id_of(intent, legs), prices,
                          ("found at the broker: an earlier attempt of this request had placed it",),
                          self.limit.today_count())
        if any(gtt is None and self.find_placed(r, since, listed, contenders=()) is not None
               for gtt, r in zip(found, requests)):
            return None  # a missing leg was left to another open place: not yet known to be half
        for gtt in filter(None, found):  # half an OCO is worse than none
            self._withdraw(gtt.gtt_id)
        return None

    def find_placed(self, request: GttRequest, since: datetime, listed: list[BrokerGtt] | None = None, *,
                    record_id: int | None = None, contenders: Sequence[Snapshot] | None = None) -> BrokerGtt | None:
        """The broker GTT matching `request`, created since the attempt began (`since`, less the
        clock skew), that the gateway does not know yet: how an answer lost after the broker did
        the work is found again. A cancelled one is not (it is a leg the gateway withdrew, or one
        cancelled in the app). Of two such, the earliest is taken, and the other is logged.

        Nor is a GTT another open place could own (`contenders`, by default every open intent but
        this request's record `record_id`): one whose broker call is still running may yet be
        answered with that GTT's id, and of two whose answers were both lost, the one that began
        first takes it. So two requests for the same order never both claim one GTT."""
        listed = self.broker.list_gtts() if listed is None else listed
        candidates = [gtt for gtt in listed
                      if gtt.matches(request) and not gtt.cancelled
                      and (gtt.created_at is None or gtt.created_at >= since - CLOCK_SKEW)]
        if not candidates:
            return None
        # Read after the listing and before the known ids: a place that could own a listed GTT
        # wrote its intent before its broker call, and one that has since recorded its GTT
        # closed that intent in the same commit, so the GTT is then known.
        if contenders is None:
            contenders = self.store.requests.with_intent()
        rivals = [s for s in contenders if s.id != record_id and s.plan]
        known = self.store.orders.known_broker_ids([gtt.gtt_id for gtt in candidates])
        fresh = sorted((gtt for gtt in candidates if gtt.gtt_id not in known
                        and not any(_yields_to(rival, gtt, since, record_id) for rival in rivals)),
                       key=lambda gtt: gtt.created_at or since)
        if len(fresh) > 1:
            log.warning("%d unknown GTTs match one lost place (%s); taking the earliest, %s",
                        len(fresh), ", ".join(gtt.gtt_id for gtt in fresh), fresh[0].gtt_id)
        return fresh[0] if fresh else None

    # -- the broker calls -------------------------------------------------------------------

    def _send_place(self, request: GttRequest) -> str:
        """One place, retried on a broker 429 (nothing was placed) within the caller's patience."""
        deadline = time.monotonic() + broker_deadline.bounded(RATE_LIMIT_RETRY_BUDGET)
        while True:
            try:
                return self.broker.place_gtt(request)
            except RateLimited as exc:
                if isinstance(exc, PacingTimeout) or time.monotonic() + RATE_LIMIT_RETRY_PAUSE > deadline:
                    raise
                time.sleep(RATE_LIMIT_RETRY_PAUSE)

    def _place_one(self, request: GttRequest, reservation: Reservation, started: datetime,
                   record_id: int | None) -> str:
        try:
            return self._send_place(request)
        except BrokerError as exc:
            found = self._found_despite(exc, request, started, record_id)
            if found is not None:
                return found.gtt_id
            # Not there (yet) proves nothing: the broker may still be doing the work. The place
            # stays settling (intent and trade kept) until its window has passed.
            if not exc.may_have_reached:
                self.limit.release(reservation.day)  # nothing was placed: the trade is not counted
            raise

    def _found_despite(self, exc: BrokerError, request: GttRequest, started: datetime,
                       record_id: int | None) -> BrokerGtt | None:
        """The GTT a place that failed with `exc` created after all (its answer lost or garbled
        after the broker did the work), when there is time to ask what the broker holds."""
        if not exc.may_have_reached or (utcnow() - started).total_seconds() >= self.lookup_budget:
            return None
        try:
            found = self.find_placed(request, since=started, record_id=record_id)
        except BrokerError:
            return None  # still unknown
        if found is not None:
            log.warning("place answered %s but the GTT %s exists: treated as placed", exc, found.gtt_id)
        return found

    def _place_pair(self, plan: OcoPlan, reservation: Reservation, started: datetime,
                    record_id: int | None) -> Legs:
        """Both OCO legs, or neither: a failed second leg takes the first one down with it,
        unless the broker made it after all (found, the pair is placed)."""
        lower_id = self._place_one(plan.lower.request, reservation, started, record_id)
        try:
            upper_id = self._send_place(plan.upper.request)
        except BrokerError as exc:
            found = self._found_despite(exc, plan.upper.request, started, record_id)
            if found is not None:
                return [(lower_id, LOWER, SCHEDULED), (found.gtt_id, UPPER, SCHEDULED)]
            undone = self._withdraw(lower_id)
            # Not found, the upper leg may still appear: the pair stays settling, and whoever
            # finds the leg later withdraws it (half a pair is never recorded).
            stray_may_come = exc.may_have_reached
            if undone and not stray_may_come:
                self.limit.release(reservation.day)
                exc.may_have_reached = False
            elif not undone:
                exc.message += ("; the stop-loss leg could not be withdrawn: check Upstox's GTT list "
                                f"for {lower_id}")
                # Half a pair may be live: the intent and the trade are kept, so the recovery
                # withdraws it and gives the trade back.
                exc.may_have_reached = True
            raise
        return [(lower_id, LOWER, SCHEDULED), (upper_id, UPPER, SCHEDULED)]

    def _withdraw(self, gtt_id: str) -> bool:
        """Cancel a GTT the gateway just placed; True when it is certainly gone."""
        try:
            self.broker.cancel_gtt(gtt_id)
            return True
        except BrokerError as exc:
            log.error("could not withdraw GTT %s: %s", gtt_id, exc)
            try:
                return self.broker.get_gtt(gtt_id) is None
            except BrokerError:
                return False
