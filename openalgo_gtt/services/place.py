"""Place a GTT, exactly once: the one use case that crosses every part of the gateway.

The walk runs one way. The order is planned (services/planner.py); a place attempt begins (its
intent: what will be sent and how to find it again, with the day's trade, in one unit of work);
the broker is called (services/place_sender.py); the attempt is RECORDED (the GTT, the answer
kept for duplicates and the audit row) in a second unit of work; only then is the caller
answered, so every trigger id a caller hears is one the store holds, whatever crashes after. A
place that cannot be sent within the caller's patience (a burst) is queued instead: answered 202
and sent by services/place_queue.py. Every move of the attempt is made by services/attempts.py,
the one driver, so a crash between any two is finished by the watcher's pass
(domain/place_attempt.py draws the machine).
"""
from __future__ import annotations

import logging
import math
from datetime import datetime
from decimal import Decimal
from typing import Callable

from openalgo_gtt.brokers import deadline as broker_deadline
from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, PacingTimeout
from openalgo_gtt.domain.expiry import check_expiry
from openalgo_gtt.domain.errors import TradeLimitReached
from openalgo_gtt.domain.gtt import BRACKET, OCO, Plan
from openalgo_gtt.domain.model import SINGLE, GttRequest, TriggerKind
from openalgo_gtt.domain.oco import LOWER, UPPER, OcoPlan
from openalgo_gtt.domain.place_attempt import AttemptState, PlaceAttempt, settling
from openalgo_gtt.domain.symbols import InstrumentInfo
from openalgo_gtt.services.answers import ApiError, placed_answer
from openalgo_gtt.services.attempts import AttemptDriver
from openalgo_gtt.services.intent import Legs, Placed, prices_of, trigger_id_of
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.services.exactly_once import AlreadyClaimed, ExactlyOnce, RequestHandle
from openalgo_gtt.services.place_queue import PlaceQueue, Queued
from openalgo_gtt.services.place_sender import PlaceSender
from openalgo_gtt.services.planner import Order, Planner
from openalgo_gtt.services.trade_limit import DailyTradeLimit, Reservation
from openalgo_gtt.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BOOK_TRIGGER_TYPE = {SINGLE: TriggerKind.SINGLE, BRACKET: TriggerKind.BRACKET, OCO: TriggerKind.TWO_LEG}
# A retry of a place still settling looks at the broker, waits this long, and looks once more
# before it answers 503: short enough for TradingView's 3 seconds.
SETTLE_RETRY_WAIT = 1.0
# The longest a place waits for its send slot while its caller waits; later, it is queued (202).
# A server thread held waiting for a slot is one fewer for the rest of a burst: waiting longer
# would make later callers of the same burst wait for a thread, past their patience.
SYNC_SLOT_WAIT = 0.5


class NotRecorded(ApiError):
    """The broker made the GTT but the store could not record it: the caller must not hear a
    trigger id the store does not hold. Its record stays open; the watcher records the GTT, and
    a retry (TradingView resends a 5xx) is answered from that record."""

    may_have_reached = True

    def __init__(self):
        super().__init__(503, "the GTT was placed at the broker but the gateway's database could not record it "
                              "yet; it will be recorded on its own: retry with the same request for its id",
                         retry_after=5, outcome_unknown=True)


class Settling(ApiError):
    """A retry of a place whose earlier attempt may still be completing at the broker: within
    the settling window, not finding its GTT proves nothing, so nothing is placed again."""

    may_have_reached = True  # the earlier attempt's outcome is still unknown: its record stays open

    def __init__(self, retry_after: int):
        super().__init__(503, "an earlier attempt of this request may still be completing at the broker; "
                              f"it is not placed again while it settles: retry in {retry_after} s",
                         retry_after=retry_after, outcome_unknown=True)


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
            # ISO text in the attempt's JSON; the record's column takes it as a time (store/gtt_orders.py)
            "expires_at": order.expires_at.isoformat() if order.expires_at else None,
            "request_id": ctx.request_id, "api_key_name": ctx.api_key_name,
        },
    }


def jsonable(legs) -> list[dict]:
    """Legs for the JSON column: Decimals as strings keep every paisa exact."""
    return [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in leg.items()} for leg in legs]


class PlaceGtt:
    def __init__(self, broker: Broker, planner: Planner, limit: DailyTradeLimit, exactly_once: ExactlyOnce,
                 driver: AttemptDriver, sender: PlaceSender, queue: PlaceQueue, *,
                 funds_check: Callable[[UnitOfWork, dict, int], None] | None = None):
        self.broker = broker
        self.sender = sender
        self.queue = queue
        # The sandbox's paper account refuses a place it cannot fund (services/paper.py), in the
        # unit of work that begins the attempt: its margin is blocked exactly when it is taken.
        # (The sandbox paces nothing, so its places are never queued: each passes this check.)
        self.funds_check = funds_check
        self.planner = planner
        self.limit = limit
        self.exactly_once = exactly_once
        self.driver = driver
        self.store = driver.store
        self.clock = driver.clock

    def __call__(self, ctx: RequestContext, order: Order, body: dict, idempotency_key: object, *,
                 endpoint: str = "place", render: Callable[[Placed], dict] = placed_answer) -> tuple[dict, int]:
        """Place `order` at most once for its key; the answer body (worded by `render`) and its
        HTTP status."""
        key = self.exactly_once.key(ctx, endpoint, body, idempotency_key, dedupe=True)
        return self.exactly_once.place(ctx, key, lambda request: self.place(order, ctx, request), render)

    def place(self, order: Order, ctx: RequestContext, request: RequestHandle) -> Placed | Queued:
        if request.record_id is not None:
            # A retry: an earlier attempt whose outcome is unknown is settled before anything
            # else (planning anew may fail now, say without a last price, and must not drop it).
            earlier = self.store.attempts.open_of(request.record_id)
            if earlier is not None and earlier.state in (AttemptState.SENDING, AttemptState.SETTLING):
                recovered = self._settle_earlier(earlier)
                if recovered is not None:
                    return recovered
        check_expiry(order.expires_at, self.clock.now())
        instrument, plan = self.planner.plan(order)
        started = self.clock.now()
        intent = _intent(order, instrument, plan, ctx)
        # The send slots of its calls, within the caller's patience, before anything is begun:
        # a place that cannot be sent in time is queued (202), never begun and then refused.
        hold = self.broker.hold_order_slots(len(intent["requests"]), broker_deadline.pacing_wait(SYNC_SLOT_WAIT))
        if hold is None:
            if not order.queue:
                raise PacingTimeout("order pacer: no send slot within the caller's patience, and the place asked "
                                    "not to be queued (queue: false); retry shortly", may_have_reached=False)
            return self.queue.enqueue(intent, request, started, force=order.force)
        with hold:
            return self._place_now(intent, plan, order, request, started)

    def _place_now(self, intent: dict, plan, order: Order, request: RequestHandle,
                   started: datetime) -> Placed | Queued:
        attempt, reservation = self._begin(order, intent, request, started)
        requests = [GttRequest.from_json(r) for r in intent["requests"]]
        try:
            legs = self.sender.send(requests, intent["roles"], attempt)
        except PacingTimeout as exc:
            # Its slot passed while it was being begun (a busy moment): nothing was sent, so it
            # is queued after all rather than refused.
            if order.queue and not exc.may_have_reached:
                queued = self.queue.requeue_unsent(attempt, request)
                if queued is not None:
                    return queued
            request.closed_by(self.driver.failed, attempt, exc)
            raise
        except BaseException as exc:
            request.closed_by(self.driver.failed, attempt, exc)
            raise
        placed = Placed(trigger_id_of(intent, legs), plan.prices, plan.warnings, reservation.count)
        # Recorded before the caller hears: answered first, a crash before the record would
        # leave the late pass to match the GTT by its content, and an identical GTT of another
        # attempt could be recorded in place of the one the caller was told (the simulation found
        # it), and a follow-up on another worker would not find the trigger id it was given.
        request.answering(placed)
        self._record(attempt, legs, request, placed.trigger_id)
        return placed

    def _begin(self, order: Order, intent: dict, request: RequestHandle,
               started: datetime) -> tuple[PlaceAttempt, Reservation]:
        """The request's key (unless a retry holds it already), the attempt and the day's trade,
        in one unit of work: a refusal from any leaves none."""
        day = self.limit.today()
        try:
            with self.store.unit_of_work() as uow:
                record_id = request.claim(uow)
                attempt = uow.begin_attempt(record_id, intent, day, started)
                reservation = self.limit.take(uow, day, order.force)
                if self.funds_check is not None:  # after the trade: the day's counter row is held
                    self.funds_check(uow, intent, attempt.id)
        except TradeLimitReached:
            request.claim_rolled_back()
            raise TradeLimitReached(self.limit.today_count(), self.limit.limit) from None
        except BaseException:
            request.claim_rolled_back()
            raise
        request.began(attempt)
        return attempt, reservation

    def _record(self, attempt: PlaceAttempt, legs: Legs, request: RequestHandle, trigger_id: str) -> None:
        """RECORDED, before the answer. Should the store fail twice, the caller hears that the
        outcome is unknown (a 503 it retries), never a trigger id the store does not hold: the
        attempt stays SENDING and the watcher's pass records its GTT once it has gone quiet, and
        a retry is answered from that record."""
        for tries_left in (1, 0):
            try:
                self.driver.recorded(attempt, legs, answer=request.stored_answer, audit=request.audit_entry)
                return
            except Exception:  # noqa: BLE001 - the GTT exists at the broker: never lost, only late
                if not tries_left:
                    log.exception("trigger %s was placed but could not be recorded yet; the watcher will "
                                  "record it", trigger_id)
        request.not_recorded()
        raise NotRecorded()

    # -- a retry of a place whose outcome is unknown ------------------------------------------

    def _settle_earlier(self, earlier: PlaceAttempt) -> Placed | None:
        """The earlier attempt's GTT found at the broker is the answer. Within the settling
        window, not finding it proves nothing: look, wait a moment, look again, then answer 503
        (the caller retries). After the window it lapses (its trade given back) and this retry
        places afresh (None)."""
        window_ends = earlier.started_at + self.driver.settle_window
        looked = False
        while True:
            if not self.driver.may_settle(earlier, self.clock.now()):
                raise self._settling(window_ends)  # its own process may still be sending it
            try:
                state, placed = self.driver.settle(earlier)
            except BrokerError:
                if settling(earlier.started_at, self.clock.now(), self.driver.settle_window):
                    raise self._settling(window_ends) from None  # could not look: still unknown
                raise
            if state == AttemptState.RECORDED:
                return placed or self._answered_elsewhere(earlier)
            if state not in (AttemptState.SENDING, AttemptState.SETTLING):
                return None  # lapsed (or refused by its own process): place afresh
            budget = broker_deadline.remaining()  # the wait must leave time for a second look
            if looked or (budget is not None and budget < SETTLE_RETRY_WAIT + 0.5):
                raise self._settling(window_ends)
            looked = True
            self.clock.sleep(min(SETTLE_RETRY_WAIT, (window_ends - self.clock.now()).total_seconds()))
            earlier = self.store.attempts.get(earlier.id) or earlier

    def _answered_elsewhere(self, earlier: PlaceAttempt) -> Placed:
        """Another process recorded the earlier attempt while this retry looked."""
        recorded = self.store.orders.by_request_id(earlier.request_id)
        return Placed(recorded.trigger_id, prices_of(earlier.plan), ("answered from an earlier attempt of this request",),
                      self.limit.today_count())

    def _settling(self, window_ends: datetime) -> Settling:
        return Settling(max(1, math.ceil((window_ends - self.clock.now()).total_seconds())))


__all__ = ["AlreadyClaimed", "PlaceGtt", "Placed", "Settling", "jsonable"]
