"""Place a GTT, exactly once: the one use case that crosses every part of the gateway.

The walk runs one way. The order is planned (services/planner.py); a place attempt begins (its
intent: what will be sent and how to find it again, with the day's trade, in one unit of work);
the broker is called; the attempt is RECORDED (the GTT, the answer kept for duplicates and the
audit row) in a second unit of work; only then is the caller answered, so every trigger id a
caller hears is one the store holds, whatever crashes after. Every move of the attempt is made by services/attempts.py, the one driver, so a crash between
any two is finished by the watcher's pass (domain/place_attempt.py draws the machine).
"""
from __future__ import annotations

import logging
import math
from datetime import datetime
from decimal import Decimal
from typing import Callable

from openalgo_gtt.brokers import deadline as broker_deadline
from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, PacingTimeout, RateLimited
from openalgo_gtt.domain.errors import TradeLimitReached
from openalgo_gtt.domain.gtt import BRACKET, OCO, Plan
from openalgo_gtt.domain.model import SCHEDULED, SINGLE, GttRequest, TriggerKind
from openalgo_gtt.domain.oco import LOWER, UPPER, OcoPlan
from openalgo_gtt.domain.place_attempt import AttemptState, PlaceAttempt, settling
from openalgo_gtt.domain.symbols import InstrumentInfo
from openalgo_gtt.services.answers import ApiError, placed_answer
from openalgo_gtt.services.attempts import AttemptDriver, Legs, Placed, prices_of, trigger_id_of
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.services.exactly_once import AlreadyClaimed, ExactlyOnce, RequestHandle
from openalgo_gtt.services.planner import Order, Planner
from openalgo_gtt.services.trade_limit import DailyTradeLimit, Reservation
from openalgo_gtt.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

BOOK_TRIGGER_TYPE = {SINGLE: TriggerKind.SINGLE, BRACKET: TriggerKind.BRACKET, OCO: TriggerKind.TWO_LEG}
# A broker 429 means nothing was placed: try again while the caller still waits (TradingView
# gives up after 3 seconds).
RATE_LIMIT_RETRY_BUDGET = 2.0
RATE_LIMIT_RETRY_PAUSE = 0.4
# A retry of a place still settling looks at the broker, waits this long, and looks once more
# before it answers 503: short enough for TradingView's 3 seconds.
SETTLE_RETRY_WAIT = 1.0


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
            "request_id": ctx.request_id, "api_key_name": ctx.api_key_name,
        },
    }


def jsonable(legs) -> list[dict]:
    """Legs for the JSON column: Decimals as strings keep every paisa exact."""
    return [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in leg.items()} for leg in legs]


class PlaceGtt:
    def __init__(self, broker: Broker, planner: Planner, limit: DailyTradeLimit, exactly_once: ExactlyOnce,
                 driver: AttemptDriver, *, lookup_budget: float,
                 funds_check: Callable[[UnitOfWork, dict, int], None] | None = None):
        self.broker = broker
        # The sandbox's paper account refuses a place it cannot fund (services/paper.py), in the
        # unit of work that begins the attempt: its margin is blocked exactly when it is taken.
        self.funds_check = funds_check
        self.planner = planner
        self.limit = limit
        self.exactly_once = exactly_once
        self.driver = driver
        self.store = driver.store
        self.clock = driver.clock
        # An ambiguous place is looked up at the broker before answering only while this much
        # time has passed since it began; later, the answer is "unknown" and a retry reconciles.
        self.lookup_budget = lookup_budget

    def __call__(self, ctx: RequestContext, order: Order, body: dict, idempotency_key: object, *,
                 endpoint: str = "place", render: Callable[[Placed], dict] = placed_answer) -> tuple[dict, int]:
        """Place `order` at most once for its key; the answer body (worded by `render`) and its
        HTTP status."""
        key = self.exactly_once.key(ctx, endpoint, body, idempotency_key, dedupe=True)
        return self.exactly_once.place(ctx, key, lambda request: self.place(order, ctx, request), render)

    def place(self, order: Order, ctx: RequestContext, request: RequestHandle) -> Placed:
        if request.record_id is not None:
            # A retry: an earlier attempt whose outcome is unknown is settled before anything
            # else (planning anew may fail now, say without a last price, and must not drop it).
            earlier = self.store.attempts.open_of(request.record_id)
            if earlier is not None and earlier.state in (AttemptState.SENDING, AttemptState.SETTLING):
                recovered = self._settle_earlier(earlier)
                if recovered is not None:
                    return recovered
        instrument, plan = self.planner.plan(order)
        started = self.clock.now()
        intent = _intent(order, instrument, plan, ctx)
        attempt, reservation = self._begin(order, intent, request, started)
        try:
            if isinstance(plan, OcoPlan):
                legs = self._place_pair(plan, attempt)
            else:
                gtt_id = self._place_one(plan.request, attempt)
                legs = [(gtt_id, intent["roles"][0], SCHEDULED)]
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

    # -- the broker calls ---------------------------------------------------------------------

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

    def _place_pair(self, plan: OcoPlan, attempt: PlaceAttempt) -> Legs:
        """Both OCO legs, or neither: a failed second leg takes the first one down with it,
        unless the broker made it after all (found, the pair is placed)."""
        lower_id = self._place_one(plan.lower.request, attempt)
        try:
            upper_id = self._send_place(plan.upper.request)
        except BrokerError as exc:
            found = self._found_despite(exc, plan.upper.request, attempt)
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


__all__ = ["AlreadyClaimed", "PlaceGtt", "Placed", "Settling", "jsonable"]
