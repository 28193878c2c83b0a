"""The one driver of place attempts (domain/place_attempt.py): every move of an attempt, by the
live request, a retry, the watcher's recovery or its late pass, is made here, as one unit of
work that compare-and-sets the state it read. What a move depends on at the broker (placing,
looking up, cancelling) is done before its unit of work, never inside it.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.errors import TradeLimitReached
from openalgo_gtt.domain.model import SCHEDULED, BrokerGtt, EventKind, GttRequest, TriggerStatus
from openalgo_gtt.domain.notifications import trigger_event
from openalgo_gtt.domain.place_attempt import (
    UNSETTLED, WAITING, AttemptState, Effect, LateVerdict, Move, PlaceAttempt, after_failure, after_lookup, late_verdict,
    move,
)
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.services.answers import answer_for
from openalgo_gtt.services.finder import BrokerFinder, could_own
from openalgo_gtt.services.intent import (
    Legs, Placed, entry_of, intent_trigger, is_exit, late_audit, prices_of, recovered_audit, trigger_id_of,
)
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.trade_limit import DailyTradeLimit
from openalgo_gtt.store.request_records import DONE, PENDING, Snapshot, gone_quiet
from openalgo_gtt.store.staged_exits import FAILED as EXIT_FAILED
from openalgo_gtt.store.staged_exits import PLACED as EXIT_PLACED
from openalgo_gtt.store.unit_of_work import Store, UnitOfWork

log = logging.getLogger(__name__)

S = AttemptState
# How long after it lapsed a place's late GTT is still looked for.
LATE_HORIZON = timedelta(minutes=15)
# Final attempts are kept this long (to read what became of a place), then purged, at most once
# an hour (a pass with nothing to do writes nothing).
KEEP_FINAL = timedelta(days=1)
PURGE_EVERY = 3600.0
FOUND_LATE = "found at the broker after its place had lapsed"


class _Lost(Exception):
    """Rolls back a move whose compare-and-set lost: another process moved the attempt first."""


class AttemptDriver:
    def __init__(self, store: Store, finder: BrokerFinder, limit: DailyTradeLimit, notifications: Notifications, *,
                 settle_window: timedelta, stale_after: timedelta):
        self.store = store
        self.finder = finder
        self.limit = limit
        self.notifications = notifications
        self.settle_window = settle_window  # how long an unknown outcome may still appear at the broker
        self.stale_after = stale_after  # longer than any broker call may run: a quiet SENDING is unknown
        self.clock = store.clock
        self._purged_at: float | None = None

    # -- the live request's moves -------------------------------------------------------------

    def recorded(self, attempt: PlaceAttempt, legs: Legs, *, answer: tuple[int, dict] | None = None,
                 audit: AuditEntry | None = None, note: str | None = None) -> bool:
        """SENDING or SETTLING -> RECORDED: the GTT, the answer kept for duplicates, its audit
        row and the `placed` event, in one unit of work. False when another process recorded
        (or settled) the attempt first, which is then the one truth."""
        plan = attempt.plan
        trigger_id = trigger_id_of(plan, legs)
        try:
            with self.store.unit_of_work() as uow:
                if not uow.move_attempt(attempt, S.RECORDED, trigger_id=trigger_id):
                    raise _Lost()
                self._add_trigger(uow, plan, trigger_id, legs, note, queued=attempt.queued_at is not None)
                if answer is not None:
                    uow.finish_request(attempt.record_id, DONE, answer[0], answer[1])
                if audit is not None:
                    uow.audit(audit)
        except _Lost:
            return False
        return True

    def failed(self, attempt: PlaceAttempt, may_have_reached: bool, record: tuple[str, int, dict | None] | None, *,
               exit_failed: str | None = None, rejected: str | None = None, requeue: bool = False) -> None:
        """SENDING -> SETTLING (the broker may have it: the trade is kept until it is found or
        lapses) or REFUSED (certainly not placed: the trade is given back), with the request's
        record closed as `record` (state, status, body; None leaves it as it is), in one unit of
        work. `exit_failed`: a staged exit the broker refused for good, and why. `rejected`: the
        trader is told the place was rejected, and why (a queued place: its caller heard 202).
        `requeue`: a queued place refused for the rate (nothing placed) is queued again."""
        step = after_failure(may_have_reached)
        gives_back = Effect.GIVE_BACK_TRADE in step.effects
        with self.store.unit_of_work() as uow:
            if not uow.move_attempt(attempt, step.to, keep_trade=not gives_back):
                return  # settled meanwhile by another process (it looked stale): its move stands
            if gives_back and attempt.reserved_day is not None:
                uow.give_back_trade(attempt.reserved_day)
            if record is not None:
                uow.finish_request(attempt.record_id, *record)
            if requeue and step.to == S.REFUSED:
                self._queue_again(uow, attempt)
            elif rejected is not None:
                self._tell_rejected(uow, attempt, rejected)
            if exit_failed is not None:
                uow.exit_settled(attempt.plan["bracket"], state=EXIT_FAILED, message=exit_failed,
                                 **entry_of(attempt.plan))

    # -- a queued place's turn (services/place_queue.py) --------------------------------------

    def claim_queued(self, attempt: PlaceAttempt) -> PlaceAttempt | None:
        """QUEUED -> SENDING, its trade taken, in one unit of work: its turn has come, and it is
        sent now (begun afresh: its settling window starts with the send). When the day's limit
        is used up, QUEUED -> REFUSED instead, its request answered with the refusal and the
        trader told. None when it is not to be sent (refused, or another sender took it)."""
        day, now = self.limit.today(), self.clock.now()
        try:
            with self.store.unit_of_work() as uow:
                self.limit.take(uow, day, bool(attempt.plan.get("force")))
                if not uow.move_attempt(attempt, S.SENDING, reserved_day=day, started_at=now):
                    raise _Lost()
        except TradeLimitReached as exc:
            self._refuse_queued(attempt, 429, str(exc))
            return None
        except _Lost:
            return None
        return replace(attempt, state=S.SENDING, reserved_day=day, started_at=now, updated_at=now,
                       holder=self.store.requests.holder)

    def unsent_to_queue(self, uow: UnitOfWork, attempt: PlaceAttempt) -> PlaceAttempt | None:
        """SENDING -> REFUSED, its trade given back, and its request queued as a new attempt, in
        `uow`: a place that certainly sent nothing because its send slot passed (the caller then
        hears 202, as when it is queued from the start). None when another process moved it."""
        if not uow.move_attempt(attempt, S.REFUSED, keep_trade=False, resolution="no send slot in time: queued"):
            return None
        if attempt.reserved_day is not None:
            uow.give_back_trade(attempt.reserved_day)
        now = self.clock.now()
        return uow.begin_attempt(attempt.record_id, attempt.plan, None, now, queued_at=now)

    def _refuse_queued(self, attempt: PlaceAttempt, status: int, why: str) -> None:
        with self.store.unit_of_work() as uow:
            if uow.move_attempt(attempt, S.REFUSED, resolution=why):
                uow.finish_request(attempt.record_id, DONE, status,
                                   {"status": "error", "message": why, "request_id": attempt.request_id})
                self._tell_rejected(uow, attempt, why)

    def _tell_rejected(self, uow: UnitOfWork, attempt: PlaceAttempt, why: str) -> None:
        self.notifications.emit(uow, trigger_event(EventKind.REJECTED, self.clock.now(),
                                                   intent_trigger(attempt.plan, attempt.request_id),
                                                   f"queued place not placed: {why}"))

    def _queue_again(self, uow: UnitOfWork, attempt: PlaceAttempt) -> None:
        """A queued place that came to nothing is queued again, a new attempt of its request: its
        caller heard 202 and will not retry, so the gateway does."""
        uow.begin_attempt(attempt.record_id, attempt.plan, None, self.clock.now(), queued_at=attempt.queued_at)

    # -- settling an attempt whose outcome is unknown (a retry, the watcher) ------------------

    def may_settle(self, attempt: PlaceAttempt, now: datetime) -> bool:
        """Whether anyone but the attempt's own process may settle it now."""
        return attempt.state in UNSETTLED and not self.finder.running(attempt, now)

    def settle(self, attempt: PlaceAttempt, listed: list[BrokerGtt] | None = None) -> tuple[AttemptState, Placed | None]:
        """Look for an unsettled attempt's GTT at the broker and move it: found -> RECORDED (its
        request answered with it); not found -> still SETTLING inside the window, LAPSED after it
        (the trade given back). Half an OCO found is withdrawn (half a pair is worse than none).
        Returns the state it is left in, and what was placed when it was recorded."""
        plan = attempt.plan
        listed = self.finder.broker.list_gtts() if listed is None else listed
        requests = [GttRequest.from_json(r) for r in plan["requests"]]
        found = [self.finder.find(r, attempt.started_at, listed, attempt_id=attempt.id) for r in requests]
        complete = bool(found) and all(found)
        if not complete:
            if any(gtt is None and self.finder.find_any(r, attempt.started_at, listed) is not None
                   for gtt, r in zip(found, requests)):
                return attempt.state, None  # a missing leg was left to another open place: not yet half
            for gtt in filter(None, found):
                self.finder.withdraw(gtt.gtt_id)
        now = self.clock.now()
        step = after_lookup(attempt.state, complete, attempt.started_at, now, self.settle_window)
        if step is None:
            return attempt.state, None  # still settling: looked for again next pass
        if step.to == S.RECORDED:
            legs = [(gtt.gtt_id, role, SCHEDULED) for gtt, role in zip(found, plan["roles"])]
            placed = Placed(trigger_id_of(plan, legs), prices_of(plan),
                            ("found at the broker: an earlier attempt of this request had placed it",),
                            self.limit.today_count())
            body = {**answer_for(self._endpoint(attempt))(placed), "request_id": attempt.request_id}
            if self.recorded(attempt, legs, answer=(200, body), audit=recovered_audit(plan, body, self.clock.now(), self.store.audit.exists),
                             note="found at the broker after a lost answer"):
                return S.RECORDED, placed
            return self._now_state(attempt), None
        if step.to == S.SETTLING:
            self._unknown(attempt)
            return S.SETTLING, None
        return (S.LAPSED if self._lapse(attempt, step) else self._now_state(attempt)), None

    def _unknown(self, attempt: PlaceAttempt) -> None:
        """A SENDING attempt whose process went quiet: its outcome is unknown (SETTLING), and its
        request, left pending by that process, is opened to retries, in one unit of work."""
        with self.store.unit_of_work() as uow:
            if uow.move_attempt(attempt, S.SETTLING):
                uow.fault_if_held_by(attempt.record_id, attempt.holder, self.clock.now() - self.stale_after)

    def _lapse(self, attempt: PlaceAttempt, step: Move) -> bool:
        """SETTLING (or a quiet SENDING) -> LAPSED: its trade given back, the trader told, and its
        request opened to a fresh place, in one unit of work."""
        with self.store.unit_of_work() as uow:
            if attempt.state == S.SENDING:
                if not uow.move_attempt(attempt, S.SETTLING):
                    return False
                attempt = PlaceAttempt(**{**attempt.__dict__, "state": S.SETTLING})
            if not uow.move_attempt(attempt, step.to, keep_trade=Effect.GIVE_BACK_TRADE not in step.effects,
                                    resolution="nothing at the broker within the settling window"):
                return False
            if Effect.GIVE_BACK_TRADE in step.effects and attempt.reserved_day is not None:
                uow.give_back_trade(attempt.reserved_day)
            if Effect.REOPEN in step.effects:
                uow.fault_if_held_by(attempt.record_id, attempt.holder, self.clock.now() - self.stale_after)
            if Effect.REQUEUE in step.effects and attempt.queued_at is not None:
                self._queue_again(uow, attempt)
            self.notifications.emit(uow, trigger_event(
                EventKind.OUTCOME_UNKNOWN, self.clock.now(), intent_trigger(attempt.plan, attempt.request_id),
                f"no GTT at the broker {self.settle_window.total_seconds():.0f} s after the place began: its "
                "trade was given back; a retry of the alert places it afresh, and a GTT the broker still "
                "creates is matched and reported"))
        log.warning("place %s lapsed: no GTT at the broker %.0f s after it began; its trade is given back",
                    attempt.request_id, self.settle_window.total_seconds())
        return True

    # -- the watcher's pass -------------------------------------------------------------------

    def settle_all(self, listed: Callable[[], list[BrokerGtt]]) -> list[str]:
        """One pass of the lease holder: every unsettled attempt it may settle, then every lapsed
        one's late GTT. `listed` reads the broker's list once, and only when there is work."""
        self.store.requests.purge_expired()
        done = []
        now = self.clock.now()
        if self._purged_at is None or self.clock.monotonic() - self._purged_at >= PURGE_EVERY:
            self._purged_at = self.clock.monotonic()
            self.store.attempts.purge(now - KEEP_FINAL)
        for attempt in self.store.attempts.unsettled():
            if not self.may_settle(attempt, now):
                continue
            state, _ = self.settle(attempt, listed())
            if state != S.SETTLING:
                done.append(f"{attempt.request_id}: {state}")
        lapsed = self.store.attempts.in_states((S.LAPSED,))
        if lapsed:
            # Read after the listing (see BrokerFinder.find); a queued one owns nothing yet, but
            # its request is being placed again.
            intents = self.store.attempts.in_states(UNSETTLED | WAITING)
            # A GTT settles one lapsed attempt only: of two identical lapsed places (or OCO legs
            # alike), each is matched with its own GTT, the one begun first with the earliest.
            taken = self.store.attempts.cancelled_late_ids()
            for attempt in lapsed:
                unclaimed = [gtt for gtt in listed() if gtt.gtt_id not in taken]
                try:
                    outcome = self._settle_late(attempt, unclaimed, intents, now)
                except BrokerError as exc:  # retried next pass
                    log.warning("could not settle the late GTT of place %s: %s", attempt.request_id, exc)
                    continue
                if outcome:
                    done.append(outcome)
                    taken.update(outcome.split(" ", 1)[1].split(", "))
        return done

    # -- a lapsed attempt's late GTT ----------------------------------------------------------

    def _settle_late(self, attempt: PlaceAttempt, listed: list[BrokerGtt], intents: list[PlaceAttempt],
                     now: datetime) -> str | None:
        requests = [GttRequest.from_json(r) for r in attempt.plan["requests"]]
        found = [self.finder.find_any(r, attempt.started_at, listed) for r in requests]
        present = [gtt for gtt in found if gtt is not None]
        if not present:
            if attempt.updated_at < now - LATE_HORIZON:
                self._move_alone(attempt, S.EXPIRED, "nothing turned up at the broker")
            return None
        others = any(other.id != attempt.id and other.state in UNSETTLED and could_own(other, gtt)
                     for other in intents for gtt in present)
        request_open = any(other.record_id == attempt.record_id for other in intents)
        record = self.store.requests.get(attempt.record_id)
        answered = record.response_status if record is not None and record.state == DONE else None
        verdict, why = late_verdict(complete=len(present) == len(found), others_may_own=others,
                                    request_open=request_open, request_answered=answered)
        if verdict == LateVerdict.WAIT:
            return None
        if verdict == LateVerdict.CANCEL:
            return self._cancel_late(attempt, present, why)
        # A retry that took the request over and died before its own attempt began (planning,
        # say) left it pending with nothing to settle it: its GTT is still counted.
        abandoned = record if record is not None and self._abandoned(record, now) else None
        return self._count_late(attempt, present, record is not None, abandoned)

    def _cancel_late(self, attempt: PlaceAttempt, gtts: list[BrokerGtt], why: str) -> str:
        for gtt in gtts:
            if gtt.can_fire:
                self.finder.broker.cancel_gtt(gtt.gtt_id)  # a failure leaves it LAPSED: retried next pass
        fired = [gtt.gtt_id for gtt in gtts if not gtt.can_fire and not gtt.cancelled]
        if fired:  # the broker made it late and it fired before any pass saw it: the trader must know
            why += f"; {', '.join(fired)} had already fired before it could be cancelled: check your positions"
        ids = ", ".join(gtt.gtt_id for gtt in gtts)
        with self.store.unit_of_work() as uow:
            if uow.move_attempt(attempt, S.CANCELLED_LATE, trigger_id=gtts[0].gtt_id, resolution=f"cancelled {ids}",
                                late_ids=[gtt.gtt_id for gtt in gtts]):
                self._tell_late(uow, attempt, ids, f"cancelled at once: {why}")
                uow.audit(late_audit(attempt, self.clock.now(), f"GTT {ids} {FOUND_LATE}; {why}", None))
                log.warning("late GTT %s of request %s: %s", ids, attempt.request_id, why)
        return f"cancelled {ids}"

    def _abandoned(self, record: Snapshot, now: datetime) -> bool:
        """Whether a request record was left pending by a process that has gone quiet (it died,
        or has not moved it for `stale_after`): a retry could take it over, and so may a late GTT."""
        return record.state == PENDING and gone_quiet(record, now, self.stale_after)

    def _count_late(self, attempt: PlaceAttempt, gtts: list[BrokerGtt], has_record: bool,
                    abandoned: Snapshot | None = None) -> str | None:
        """The request's own GTT: recorded and counted, its request answered with it (open, or
        `abandoned` as read), in one unit of work; or cancelled when the day's limit is used up."""
        plan = attempt.plan
        legs = [(gtt.gtt_id, role, SCHEDULED) for gtt, role in zip(gtts, plan["roles"])]
        trigger_id = trigger_id_of(plan, legs)
        try:
            with self.store.unit_of_work() as uow:
                # A staged exit belongs to a bracket whose trade was counted when it was placed.
                takes = Effect.TAKE_TRADE in move(S.LAPSED, S.FOUND_LATE).effects and not is_exit(plan)
                count = uow.take_trade(self.limit.today(), self.limit.limit) if takes else None
                if count is None and not is_exit(plan):
                    raise _LimitUsedUp()
                placed = Placed(trigger_id, prices_of(plan), (f"GTT {FOUND_LATE}",), count)
                body = {**answer_for(self._endpoint(attempt))(placed), "request_id": attempt.request_id}
                if not uow.move_attempt(attempt, S.FOUND_LATE, trigger_id=trigger_id,
                                        resolution=f"counted as {trigger_id}"):
                    raise _Lost()
                if has_record and not uow.answer_if_open(attempt.record_id, body, abandoned):
                    raise _Lost()  # the request is being placed again, or was answered: next pass
                self._add_trigger(uow, plan, trigger_id, legs, f"GTT {FOUND_LATE}")
                self._tell_late(uow, attempt, trigger_id, f"recorded and counted (trade {count} today)")
                uow.audit(late_audit(attempt, self.clock.now(), f"GTT {trigger_id} {FOUND_LATE}; recorded and counted "
                                                    f"(trade {count} today)", trigger_id))
        except _LimitUsedUp:
            return self._cancel_late(attempt, gtts, f"the daily trade limit ({self.limit.limit}) was used up")
        except _Lost:
            return None
        log.warning("late GTT %s of request %s recorded and counted", trigger_id, attempt.request_id)
        return f"counted {trigger_id}"

    # -- helpers ------------------------------------------------------------------------------

    def _move_alone(self, attempt: PlaceAttempt, to: AttemptState, resolution: str) -> bool:
        with self.store.unit_of_work() as uow:
            return uow.move_attempt(attempt, to, resolution=resolution)

    def _now_state(self, attempt: PlaceAttempt) -> AttemptState:
        now = self.store.attempts.get(attempt.id)
        return now.state if now is not None else attempt.state

    def _endpoint(self, attempt: PlaceAttempt) -> str:
        record = self.store.requests.get(attempt.record_id)
        return record.endpoint if record is not None else "place"

    def _add_trigger(self, uow: UnitOfWork, plan: dict, trigger_id: str, legs: Legs, note: str | None = None,
                     queued: bool = False) -> None:
        """What a recorded attempt writes: its trigger (with the `placed` event; `queued_placed`
        for a queued place, whose caller heard only 202), or, for a staged bracket's exit, the
        exit as the bracket's leg."""
        if is_exit(plan):
            uow.exit_settled(plan["bracket"], state=EXIT_PLACED, exit_gtt_id=legs[0][0], message=note,
                             **entry_of(plan))
            return
        uow.add_trigger(dict(trigger_id=trigger_id, broker_ids=[leg[0] for leg in legs],
                             status=TriggerStatus.ACTIVE, placed_at=self.clock.now(), **plan["order"]), legs)
        if queued:
            self.notifications.emit(uow, trigger_event(EventKind.QUEUED_PLACED, self.clock.now(),
                                                       intent_trigger(plan, trigger_id)))
        elif self.notifications.sends(EventKind.PLACED):
            self.notifications.emit(uow, trigger_event(EventKind.PLACED, self.clock.now(),
                                                       intent_trigger(plan, trigger_id)))

    def _tell_late(self, uow: UnitOfWork, attempt: PlaceAttempt, trigger_id: str, what: str) -> None:
        self.notifications.emit(uow, trigger_event(EventKind.FOUND_LATE, self.clock.now(),
                                                   intent_trigger(attempt.plan, trigger_id), f"{FOUND_LATE}: {what}"))


class _LimitUsedUp(Exception):
    """Rolls back a late GTT's unit of work: the day has no trade left for it."""
