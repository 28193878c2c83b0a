"""The queue of a burst's places: every alert of a candle close is placed, none refused.

A place that cannot be sent within its caller's patience (the order pacer has no slot in time:
services/place.py) is queued: its attempt is written QUEUED (domain/place_attempt.py) with its
request's 202 answer, in one unit of work, and the caller hears `{"status": "queued", ...}` at
once. The lease holder (the watcher's, so one process across workers and hosts) sends the queue
in arrival order, as fast as the pacer allows: a dispatcher claims the oldest entry (QUEUED ->
SENDING with its trade, by compare-and-set) only when a sender is free, with the send slots of
its calls held, and the sender waits for its slot and sends it like any place
(services/place_sender.py). The trader hears the outcome (`queued_placed` or `rejected`); the
request's record then answers duplicates and gttorderstatus with it.
"""
from __future__ import annotations

import enum
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, RateLimited
from openalgo_gtt.brokers.pacing import SlotHold
from openalgo_gtt.domain.model import GttRequest
from openalgo_gtt.domain.place_attempt import UNSETTLED, AttemptState, PlaceAttempt
from openalgo_gtt.services.answers import error_status_and_body, placed_answer
from openalgo_gtt.services.attempts import AttemptDriver
from openalgo_gtt.services.intent import Placed, prices_of, trigger_id_of
from openalgo_gtt.services.exactly_once import RequestHandle
from openalgo_gtt.services.place_sender import PlaceSender
from openalgo_gtt.store.place_attempts import QueueStats
from openalgo_gtt.store.request_records import DONE
from openalgo_gtt.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# For the caller's estimate only: Upstox's and Kite's order limit is 10 calls a second.
ORDER_CALLS_PER_SECOND = 10
# Senders: enough that, with every one waiting for its slot or its answer, the pacer's rate is
# still reached when the broker is slow (10 a second at 1.2 s an answer needs 12 in flight).
SENDERS = 16
# How often an idle lease holder looks for places queued by other workers.
POLL_SECONDS = 0.25


class Dispatched(enum.Enum):
    """What one dispatch did with the oldest queued place (None: the queue was empty)."""

    DONE = "sent here, refused, or taken by another process"
    SUBMITTED = "handed to a sender thread"


@dataclass(frozen=True)
class Queued:
    request_id: str
    position: int  # 1: the next to be sent
    eta_seconds: int


def queued_answer(queued: Queued) -> dict:
    return {"status": "queued", "request_id": queued.request_id, "position": queued.position,
            "eta_seconds": queued.eta_seconds,
            "message": "a burst: queued, and placed in arrival order within the broker's rate limit; the outcome "
                       "is notified, and gttorderstatus with this request_id tells it"}


def eta_seconds(position: int) -> int:
    return max(1, math.ceil(position / ORDER_CALLS_PER_SECOND))


class PlaceQueue:
    def __init__(self, driver: AttemptDriver, sender: PlaceSender, broker: Broker, *,
                 holding: Callable[[], bool], senders: int = SENDERS, poll_seconds: float = POLL_SECONDS):
        self.driver = driver
        self.store = driver.store
        self.sender = sender
        self.broker = broker
        self._holding = holding
        self._senders = senders
        self._poll = poll_seconds
        self._free = threading.Semaphore(senders)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- a request queues its place -----------------------------------------------------------

    def enqueue(self, intent: dict, request: RequestHandle, started: datetime, *, force: bool) -> Queued:
        """The place's attempt, QUEUED (no trade yet), its request answered 202 with its audit
        row, in one unit of work."""
        intent = {**intent, "force": force}  # the limit is checked when its turn comes
        try:
            with self.store.unit_of_work() as uow:
                record_id = request.claim(uow)
                attempt = uow.begin_attempt(record_id, intent, None, started, queued_at=started)
                queued = self._answer_queued(uow, request, attempt)
        except BaseException:
            request.claim_rolled_back()
            request.not_recorded()
            raise
        self._wake.set()
        return queued

    def requeue_unsent(self, attempt: PlaceAttempt, request: RequestHandle) -> Queued | None:
        """A begun place whose send slot passed before it could send (nothing sent): queued after
        all, in one unit of work (see AttemptDriver.unsent_to_queue). None when another process
        settled it meanwhile."""
        try:
            with self.store.unit_of_work() as uow:
                queued_attempt = self.driver.unsent_to_queue(uow, attempt)
                if queued_attempt is None:
                    return None
                queued = self._answer_queued(uow, request, queued_attempt)
        except BaseException:
            request.not_recorded()
            raise
        self._wake.set()
        return queued

    def _answer_queued(self, uow: UnitOfWork, request: RequestHandle, attempt: PlaceAttempt) -> Queued:
        position = uow.queue_position(attempt.id)
        queued = Queued(request.ctx.request_id, position, eta_seconds(position))
        status, body = request.queued(queued_answer(queued))
        uow.finish_request(attempt.record_id, DONE, status, body)
        uow.audit(request.audit_entry)
        return queued

    def where_is(self, request_id: str) -> dict | str | None:
        """Where a place request stands: its trigger id once placed; else what gttorderstatus
        answers of it (queued with its position, sending, rejected with why); None when no
        place of this id is known."""
        attempt = self.store.attempts.of_request(request_id)
        if attempt is None:
            return None
        if attempt.state in (AttemptState.RECORDED, AttemptState.FOUND_LATE):
            recorded = self.store.orders.by_request_id(request_id)
            if recorded is not None:
                return recorded.trigger_id
        entry = {"request_id": request_id, "symbol": attempt.plan["order"]["symbol"],
                 "exchange": attempt.plan["order"]["exchange"]}
        if attempt.state == AttemptState.QUEUED:
            position = self.store.attempts.queue_position(attempt.id)
            return {**entry, "status": "queued", "position": position, "eta_seconds": eta_seconds(position)}
        if attempt.state in UNSETTLED:
            return {**entry, "status": "sending", "message": "being sent, or its outcome is being settled"}
        record = self.store.requests.get(attempt.record_id)
        answer = record.response_body if record is not None and isinstance(record.response_body, dict) else {}
        return {**entry, "status": "rejected" if attempt.state == AttemptState.REFUSED else str(attempt.state),
                "message": answer.get("message")}

    def waiting(self, most: int = 20) -> tuple[QueueStats, list[dict]]:
        """The queue as the page shows it: its figures, and the first `most` places in the order
        they will be sent (position, symbol, side, trigger prices, when queued)."""
        now = self.driver.clock.now()
        stats = self.store.attempts.queue_stats(now)
        entries = []
        for position, attempt in enumerate(self.store.attempts.in_states((AttemptState.QUEUED,))[:most], start=1):
            order = attempt.plan["order"]
            entries.append({"position": position, "request_id": attempt.request_id, "symbol": order["symbol"],
                            "exchange": order["exchange"], "action": order["action"], "quantity": order["quantity"],
                            "prices": attempt.plan.get("prices", {}),
                            "waiting_seconds": round((now - (attempt.queued_at or now)).total_seconds(), 1)})
        return stats, entries

    # -- the lease holder sends it ------------------------------------------------------------

    def dispatch_next(self, wait_for_send: bool = False) -> Dispatched | None:
        """Claim the oldest queued place and send it (on a sender thread, or here when
        `wait_for_send`); None when the queue is empty."""
        attempt = self.store.attempts.oldest_queued()
        if attempt is None:
            return None
        hold = self.broker.hold_order_slots(len(attempt.plan["requests"]), None)
        claimed = self.driver.claim_queued(attempt)
        if claimed is None:  # refused (the day's limit), or another process took it
            with hold:
                pass  # its slots go back
            return Dispatched.DONE
        if wait_for_send or self._pool is None:
            self._send(claimed, hold)
            return Dispatched.DONE
        self._pool.submit(self._send, claimed, hold)  # the sender frees its place when done
        return Dispatched.SUBMITTED

    def _send(self, attempt: PlaceAttempt, hold: SlotHold) -> None:
        plan = attempt.plan
        try:
            with hold:
                legs = self.sender.send([GttRequest.from_json(r) for r in plan["requests"]], plan["roles"], attempt)
        except BrokerError as exc:
            self._failed(attempt, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the place: it settles
            log.exception("queued place %s: the send failed", attempt.request_id)
            self.driver.failed(attempt, True, None)
            raise exc
        placed = Placed(trigger_id_of(plan, legs), prices_of(plan), (), self.driver.limit.today_count())
        body = {**placed_answer(placed), "request_id": attempt.request_id}
        self.driver.recorded(attempt, legs, answer=(200, body))

    def _failed(self, attempt: PlaceAttempt, exc: BrokerError) -> None:
        if exc.may_have_reached:
            # Unknown: SETTLING, found by the watcher's pass, or queued again when it lapses. The
            # request keeps its "queued" answer meanwhile.
            self.driver.failed(attempt, True, None)
            return
        if isinstance(exc, RateLimited):  # nothing placed: back in the queue
            self.driver.failed(attempt, False, None, requeue=True)
            return
        status, envelope = error_status_and_body(exc)
        self.driver.failed(attempt, False, (DONE, status, {**envelope, "request_id": attempt.request_id}),
                           rejected=envelope.get("message", str(exc)))

    def _run(self) -> None:
        while not self._stop.is_set():
            outcome = None
            try:
                # A place is claimed only when a sender is free to send it at once.
                if self._holding() and self._free.acquire(timeout=self._poll):
                    try:
                        outcome = self.dispatch_next()
                    finally:
                        if outcome is not Dispatched.SUBMITTED:
                            self._free.release()
            except Exception:  # noqa: BLE001 - the dispatcher must outlive a bad pass
                log.exception("place queue: dispatch failed")
            if outcome is None and self._wake.wait(self._poll):
                self._wake.clear()

    def start(self) -> None:
        if self._thread is None:
            self._pool = _ReleasingPool(self._senders, self._free)
            self._thread = threading.Thread(target=self._run, name="place-queue", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def wake(self) -> None:
        self._wake.set()


class _ReleasingPool(ThreadPoolExecutor):
    """Sender threads; each finished send frees a place for the dispatcher to claim the next."""

    def __init__(self, workers: int, free: threading.Semaphore):
        super().__init__(max_workers=workers, thread_name_prefix="place-queue-send")
        self._free_slots = free

    def submit(self, fn, /, *args, **kwargs):
        def run():
            try:
                fn(*args, **kwargs)
            except Exception:  # noqa: BLE001 - logged by the send; the pool must go on
                pass
            finally:
                self._free_slots.release()
        return super().submit(run)
