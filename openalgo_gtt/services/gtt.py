"""The GTT use cases after a place: modify, cancel, one trigger's status, and the order book.

Each takes plain values, finds the trigger in the gateway's record (or at the broker, for a GTT
placed elsewhere), talks to the broker through the `Broker` interface and records what changed.
Errors are raised as domain or broker exceptions; services/answers.py words them.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from typing import Callable

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, InputRejected
from openalgo_gtt.domain.aggregate import (
    Fired, fired_part, fired_refusal, leg_modify_refusal, recorded_fire_refusal,
)
from openalgo_gtt.domain.book import last_change
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.errors import DomainError, GttNotFound
from openalgo_gtt.domain.intent import BRACKET
from openalgo_gtt.domain.model import ENTRY, MULTIPLE, NATIVE_OCO, BrokerGtt, EventKind, TriggerKind, TriggerStatus
from openalgo_gtt.domain.modify import check_modify_allowed, own_type
from openalgo_gtt.domain.notifications import trigger_event
from openalgo_gtt.domain.oco import OcoPlan, leg_state, leg_status
from openalgo_gtt.domain.records import RecordedLeg, RecordedTrigger
from openalgo_gtt.domain.rule_status import Phase, phase
from openalgo_gtt.services.answers import placed_answer
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.services.exactly_once import ExactlyOnce
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.order_book import BookView, OrderBook, gtt_entry, pair_entry, pair_sides, recorded_entry
from openalgo_gtt.services.paper import PaperBook
from openalgo_gtt.services.place import Placed, jsonable
from openalgo_gtt.services.staged_bracket import StagedBrackets
from openalgo_gtt.services.planner import Order, Planner
from openalgo_gtt.services.watcher import GttWatcher
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.unit_of_work import Store
from openalgo_gtt.store.instruments import InstrumentIndex

log = logging.getLogger(__name__)


class GttService:
    def __init__(self, broker: Broker, instruments: InstrumentIndex, orders: GttOrders, planner: Planner,
                 exactly_once: ExactlyOnce, *, store: Store, watcher: GttWatcher,
                 notifications: Notifications, staged: StagedBrackets | None,
                 funds_check: PaperBook | None = None):
        self.broker = broker
        # The sandbox's paper account refuses a modify it cannot fund (services/paper.py).
        self.funds_check = funds_check
        # Brackets the gateway stages (Kite): their status shows both stages. None on a broker
        # with a bracket GTT of its own (Upstox, the sandbox).
        self.staged = staged
        self.store = store  # with `notifications`: a change and its event are one transaction
        # What the broker shows when a trigger is read (its status, or before a cancel or modify)
        # is recorded through the watcher, so a change seen here first still gives its events
        # and still cancels an OCO's other leg.
        self.watcher = watcher
        self.notifications = notifications
        self.exactly_once = exactly_once
        self.instruments = instruments
        self.orders = orders
        self.planner = planner
        self.order_book = OrderBook(broker, instruments, orders)

    # -- the use cases as the API calls them: at most once per key -------------------------

    def modify_once(self, ctx: RequestContext, trigger_id: str, order: Order, body: dict,
                    idempotency_key: object) -> tuple[dict, int]:
        key = self.exactly_once.key(ctx, "modify", body, idempotency_key, dedupe=False)
        return self.exactly_once.run(ctx, key, lambda: placed_answer(
            self.modify(trigger_id, order, request_id=ctx.request_id)))

    def cancel_once(self, ctx: RequestContext, trigger_id: str, body: dict,
                    idempotency_key: object) -> tuple[dict, int]:
        key = self.exactly_once.key(ctx, "cancel", body, idempotency_key, dedupe=False)
        return self.exactly_once.run(ctx, key, lambda: self._cancel_answer(trigger_id))

    def _cancel_answer(self, trigger_id: str) -> dict:
        cancelled = self.cancel(trigger_id)
        answer = {"status": "success", "trigger_id": cancelled}
        if cancelled != trigger_id:
            answer["message"] = f"{trigger_id} is a leg of the OCO {cancelled}: the whole pair was cancelled"
        return answer

    # -- finding a trigger ------------------------------------------------------------------

    def _existing(self, trigger_id: str) -> tuple[RecordedTrigger | None, BrokerGtt | None, RecordedLeg | None]:
        """The gateway's record of a trigger; or of the trigger whose part `trigger_id` is (an OCO
        leg's broker id, with that leg); or the broker's GTT when it was placed elsewhere."""
        recorded, leg = self._recorded(trigger_id)
        if recorded is not None:
            return recorded, None, leg
        found = self._at_broker(trigger_id)
        if found is None:
            raise GttNotFound(trigger_id)
        return None, found, None

    def _at_broker(self, trigger_id: str) -> BrokerGtt | None:
        """A GTT the gateway has no record of, as the broker shows it; None when the broker does
        not know the id. The one place a broker's refusal of an id it cannot find (Upstox's
        UDAPI1135 for an id not of its format, the sandbox's the same) becomes "not found": a
        look-up by id changes nothing, so a refusal of it can only mean no such GTT."""
        try:
            return self.broker.get_gtt(trigger_id)
        except InputRejected as exc:
            log.info("the broker does not know GTT %r (%s %s)", trigger_id, exc.code, exc.message)
            return None

    def _recorded(self, trigger_id: str) -> tuple[RecordedTrigger | None, RecordedLeg | None]:
        recorded = self.orders.get(trigger_id)
        if recorded is not None:
            return recorded, None
        leg = self.orders.legs_by_broker_id([trigger_id]).get(trigger_id)
        if leg is None:
            return None, None
        return self.orders.get(leg.trigger_id), leg

    def _read(self, recorded: RecordedTrigger) -> list[BrokerGtt | None]:
        """Every broker GTT of a recorded trigger, as the broker shows it now."""
        return [self.broker.get_gtt(broker_id) for broker_id in recorded.broker_ids]

    def _refuse_if_fired(self, recorded: RecordedTrigger, gtts: list[BrokerGtt | None], verb: str) -> None:
        """A trigger any part of which fired can be neither cancelled nor modified: refused with
        which part fired and when. What the broker shows is recorded first (through the watcher:
        the fire's events, and an OCO's other leg cancelled at once), never a cancel."""
        fired = self._fired(recorded, gtts)
        if fired is None and recorded.status != TriggerStatus.TRIGGERED:
            return
        if recorded.status == TriggerStatus.ACTIVE:
            self.watcher.settle_seen(recorded.trigger_id, gtts)
        if fired is None:
            raise recorded_fire_refusal(recorded.trigger_id, verb, recorded.state_changed_at, recorded.status_message)
        exit_ids = self.staged.exit_of(recorded) if self.staged is not None and fired.role == ENTRY else []
        raise fired_refusal(recorded.trigger_id, verb, fired, recorded.trigger_type,
                            exit_id=exit_ids[0] if exit_ids else None)

    def _fired(self, recorded: RecordedTrigger, gtts: list[BrokerGtt | None]) -> Fired | None:
        seen_at = {}
        if recorded.is_pair:  # when the watcher recorded each leg's change: shown if the broker gives no time
            legs = self.orders.legs_by_broker_id(recorded.broker_ids).values()
            seen_at = {leg.broker_id: leg.updated_at for leg in legs if phase(leg.status) is Phase.FIRED}
        elif recorded.status == TriggerStatus.TRIGGERED and recorded.state_changed_at is not None:
            seen_at = {recorded.broker_ids[0]: recorded.state_changed_at}
        return fired_part(recorded.trigger_type, recorded.broker_ids, gtts, seen_at)

    # -- modify -----------------------------------------------------------------------------

    def modify(self, trigger_id: str, order: Order, *, request_id: str) -> Placed:
        recorded, at_broker, leg = self._existing(trigger_id)
        if leg is not None:
            raise leg_modify_refusal(trigger_id, leg.role, leg.trigger_id)
        if recorded is not None:
            _refuse_if_expired(recorded, "modified")
            self._refuse_if_fired(recorded, self._read(recorded), "modified")
        else:
            fired = fired_part(_kind_of(at_broker), [trigger_id], [at_broker])
            if fired is not None:
                raise fired_refusal(trigger_id, "modified", fired, _kind_of(at_broker))
        existing = recorded if recorded is not None else {
            "instrument_key": at_broker.instrument_key,
            # A native OCO (Kite's two-leg) has no ENTRY: its legs are on the caller's side.
            "action": next((r.transaction_type for r in at_broker.rules
                            if r.strategy == ENTRY or at_broker.type == NATIVE_OCO), None),
            "product": at_broker.product,
            "trigger_type": BRACKET if at_broker.type == MULTIPLE else at_broker.type,
        }
        order = replace(order, intent=own_type(existing, order.intent))
        instrument, plan = self.planner.plan(order)
        check_modify_allowed(existing, order.intent, instrument)
        held = self.funds_check is not None and recorded is not None and self.funds_check.check_modify(
            recorded, jsonable(plan.legs))
        if isinstance(plan, OcoPlan):
            lower_id, upper_id = recorded.broker_ids
            self._first_change(lambda: self.broker.modify_gtt(lower_id, plan.lower.request),
                               recorded if held else None)
            try:
                self.broker.modify_gtt(upper_id, plan.upper.request)
            except BrokerError as exc:
                exc.message += (f"; the stop-loss leg {lower_id} was already changed to "
                                f"{plan.lower.prices['entry']}: send the modify again or cancel")
                self.orders.replaced(trigger_id, quantity=plan.lower.request.quantity,
                                     legs=jsonable([plan.legs[0], recorded.legs[1]]), request_id=request_id)
                raise
            request, legs = plan.lower.request, plan.legs
        else:
            broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
            self._first_change(lambda: self.broker.modify_gtt(broker_id, plan.request),
                               recorded if held else None)
            request, legs = plan.request, plan.legs
        if recorded is not None:
            now_legs = jsonable(legs)
            event = trigger_event(EventKind.MODIFIED, utcnow(), replace(recorded, quantity=request.quantity,
                                                                         legs=now_legs))
            with self.store.unit_of_work() as uow:
                # Modified and cancelled through the API are events too (kept as history; sent
                # only when NOTIFY_EVENTS names them): the change and its event in one transaction.
                uow.replaced(trigger_id, quantity=request.quantity, legs=now_legs, request_id=request_id)
                self.notifications.emit(uow, event)
        return Placed(trigger_id, plan.prices, plan.warnings)

    def _first_change(self, call: Callable[[], object], held: RecordedTrigger | None) -> None:
        """A modify's first broker call. Refused or failed, nothing changed at the broker: the
        margin the paper account held for it (`held`, the record as it was) is given back."""
        try:
            call()
        except BaseException:
            if held is not None:
                self.funds_check.release_modify(held)
            raise

    # -- cancel -----------------------------------------------------------------------------

    def cancel(self, trigger_id: str) -> str:
        """Cancel a trigger, whole: by its id, or by the broker id of one of its legs (the answer
        then names the trigger). Returns the trigger's id."""
        recorded, at_broker, _ = self._existing(trigger_id)
        if recorded is None:
            fired = fired_part(_kind_of(at_broker), [trigger_id], [at_broker])
            if fired is None:
                fired = self._cancel_at_broker(trigger_id, _kind_of(at_broker))
            if fired is not None:
                raise fired_refusal(trigger_id, "cancelled", fired, _kind_of(at_broker))
            return trigger_id
        _refuse_if_expired(recorded, "cancelled")
        gtts = self._read(recorded)
        self._refuse_if_fired(recorded, gtts, "cancelled")
        if not recorded.is_pair and gtts[0] is None:
            if recorded.status == TriggerStatus.CANCELLED:
                return recorded.trigger_id  # cancelled before; the broker no longer lists it
            # Upstox's details call omits completed GTTs: nothing is left to cancel.
            raise DomainError(f"{recorded.trigger_id} cannot be cancelled: it is no longer listed at the broker "
                              "(completed, or deleted there)")
        self._refuse_if_ended(recorded, gtts)
        done: list[str] = []
        for broker_id, gtt in zip(recorded.broker_ids, gtts):
            if gtt is not None and gtt.cancelled:
                continue  # cancelled at the broker already: nothing of it can fire
            try:
                fired = self._cancel_at_broker(broker_id, recorded.trigger_type)
            except BrokerError as exc:
                if done:  # half a pair cancelled: never leave the other leg live for long
                    self._settle_half_cancelled(recorded, exc, done[0], broker_id)
                raise
            if fired is not None:
                # It fired between the read and its cancel: the trigger is triggered, not cancelled
                # (the watcher cancels an OCO's other leg as it records that).
                self._refuse_if_fired(recorded, self._read(recorded), "cancelled")
            done.append(broker_id)
        if recorded.status == TriggerStatus.CANCELLED:
            return recorded.trigger_id  # a retry of a cancel that was done: no second event
        now = utcnow()
        with self.store.unit_of_work() as uow:
            uow.set_status(recorded.trigger_id, TriggerStatus.CANCELLED, cancelled_at=now)
            self.notifications.emit(uow, trigger_event(EventKind.CANCELLED, now, recorded))
        return recorded.trigger_id

    def _settle_half_cancelled(self, recorded: RecordedTrigger, exc: BrokerError, cancelled: str, live: str) -> None:
        """One leg of a pair is cancelled and the other's cancel failed: the watcher settles such
        a pair (it cancels the live leg, trying again within its pass), now if the broker lets it,
        else on its next pass. The caller is told, and a cancel sent again confirms it."""
        try:
            self.watcher.settle_seen(recorded.trigger_id, self._read(recorded))
        except BrokerError:
            log.warning("OCO %s: leg %s cancelled, leg %s not yet: the watcher's next pass cancels it",
                        recorded.trigger_id, cancelled, live)
        exc.message += (f"; the leg {cancelled} of {recorded.trigger_id} was cancelled, and the gateway cancels "
                        f"the leg {live} as soon as the broker lets it: send the cancel again to confirm")

    def _refuse_if_ended(self, recorded: RecordedTrigger, gtts: list[BrokerGtt | None]) -> None:
        """A trigger that expired or was rejected at the broker (a part of it, for a pair) has
        nothing a cancel could stop: recorded as the broker shows it (an OCO's live leg is
        cancelled with it), and refused saying so. One cancelled at the broker is cancelled as asked."""
        phases = {phase(leg_state(gtt)) for gtt in gtts} if recorded.is_pair else {
            phase(rule.status) for rule in gtts[0].rules}
        if gtts[0] is not None and not recorded.is_pair and gtts[0].can_fire:
            return  # a bracket's cancelled or expired exits are its own business while it can fire
        ended = phases & {Phase.FAILED, Phase.EXPIRED, Phase.UNKNOWN}
        if not ended:
            return
        if recorded.status == TriggerStatus.ACTIVE:
            self.watcher.settle_seen(recorded.trigger_id, gtts)
        now = self.orders.get(recorded.trigger_id)
        why = f" ({now.status_message})" if now.status_message else ""
        state = now.status if now.status != TriggerStatus.ACTIVE else "over at the broker"
        raise DomainError(f"{recorded.trigger_id} cannot be cancelled: it is {state}{why}; nothing of it can fire")

    def _cancel_at_broker(self, broker_id: str, trigger_type: str) -> Fired | None:
        """Cancel one broker GTT; None once it is cancelled. One the broker refuses because it is
        already cancelled (a retry of a cancel whose answer was lost while the broker did it, or a
        GTT cancelled in the app) is cancelled as asked; one it refuses because it fired meanwhile
        returns what fired; any other refusal, and any fault, stands (the caller is answered in
        time; a pair left half cancelled is the watcher's to finish: `_settle_half_cancelled`)."""
        try:
            self.broker.cancel_gtt(broker_id)
            return None
        except InputRejected:
            try:
                gtt = self.broker.get_gtt(broker_id)
            except BrokerError:
                gtt = None
            if gtt is not None and gtt.cancelled:
                log.info("GTT %s was already cancelled at the broker: the cancel is done", broker_id)
                return None
            fired = fired_part(trigger_type, [broker_id], [gtt])
            if fired is not None:
                return fired
            raise

    def recorded(self, status: str | None = None) -> list[RecordedTrigger]:
        """The triggers this gateway placed, newest first (optionally in one state)."""
        return self.orders.list(status)

    # -- order book and status --------------------------------------------------------------

    def book_view(self, include_all: bool = False) -> BookView:
        """The same book as the API answers it (trigger ids shown, the entries' JSON), shared
        with concurrent callers: read it, never change it."""
        return self.order_book.view(include_all)

    def status(self, trigger_id: str) -> dict:
        """One trigger in any state, with each leg's broker status, order id and message. Asked by
        the broker id of a leg of a two-leg trigger, the leg's own entry, naming its pair
        (`pair_trigger_id`, `role`, `pair_status`)."""
        recorded, leg = self._recorded(trigger_id)
        if leg is not None:
            return self._leg_status(recorded, leg)
        if recorded is not None and recorded.is_pair:
            recorded, gtts = self._pair_now(recorded)
            return self._pair_entry(recorded, gtts)
        broker_id = recorded.broker_ids[0] if recorded is not None else trigger_id
        gtt = self.broker.get_gtt(broker_id) if recorded is not None else self._at_broker(trigger_id)
        if gtt is None:
            if recorded is None:
                raise GttNotFound(trigger_id)
            # Upstox's details call does not return completed GTTs: answer from our record.
            return recorded_entry(recorded, recorded.legs, self._last_price(recorded.instrument_key))
        if recorded is not None and recorded.status == TriggerStatus.ACTIVE:
            self.watcher.settle_seen(trigger_id, [gtt])
        entry = gtt_entry(self.instruments, gtt, self._last_price(gtt.instrument_key), recorded)
        if self.staged is not None and recorded is not None and recorded.trigger_type == TriggerKind.BRACKET:
            entry["stages"] = self.staged.stages(recorded, gtt)
            entry["legs"] += [_staged_leg(leg) for leg in recorded.legs if leg.get("role") in ("target", "stoploss")]
        return entry

    def _pair_now(self, recorded: RecordedTrigger) -> tuple[RecordedTrigger, list[BrokerGtt | None]]:
        """A live pair's record and legs as they stand once what the broker shows is recorded: a
        leg that left SCHEDULED settles the pair now (the other leg cancelled), as the webhook would."""
        gtts = self._read(recorded)
        if recorded.status == TriggerStatus.ACTIVE and self.watcher.settle_seen(recorded.trigger_id, gtts):
            return self.orders.get(recorded.trigger_id), self._read(recorded)
        return recorded, gtts

    def _pair_entry(self, recorded: RecordedTrigger, gtts: list[BrokerGtt | None]) -> dict:
        legs = self.orders.legs_by_broker_id(recorded.broker_ids).values()
        return pair_entry(self.instruments, recorded, gtts[0], gtts[1], self._last_price(recorded.instrument_key),
                          last_change(*(leg.updated_at for leg in legs)))

    def _leg_status(self, recorded: RecordedTrigger, leg: RecordedLeg) -> dict:
        """A leg asked for by its broker id: its own entry, naming the trigger it belongs to."""
        if not recorded.is_pair:  # Kite's two-leg: one broker GTT is the whole trigger
            entry = self.status(recorded.trigger_id)
            return {**entry, "trigger_id": leg.broker_id, "pair_trigger_id": recorded.trigger_id,
                    "role": leg.role, "pair_status": entry["status"]}
        recorded, gtts = self._pair_now(recorded)
        pair = self._pair_entry(recorded, gtts)
        i = recorded.broker_ids.index(leg.broker_id)
        side = pair_sides(self.instruments, recorded, gtts[0], gtts[1], self._last_price(recorded.instrument_key))[i]
        return {**side, "trigger_id": leg.broker_id, "trigger_type": TriggerKind.TWO_LEG,
                "status": leg_status(leg_state(gtts[i])), "legs": [{**each, "role": leg.role} for each in side["legs"]],
                "pair_trigger_id": recorded.trigger_id, "role": leg.role, "pair_status": pair["status"]}

    def events(self, trigger_id: str) -> list[dict]:
        """The trigger's notification events, oldest first (its order status lists them)."""
        return self.notifications.history(trigger_id)

    def _last_price(self, instrument_key: str) -> Decimal | None:
        """The last price as the order book quotes it (the same cache, the same "unknown")."""
        quote = self.order_book.quotes([instrument_key]).get(instrument_key)
        return quote.last_price if quote is not None else None


def _refuse_if_expired(recorded: RecordedTrigger, verb: str) -> None:
    """A trigger the gateway ended at its expires_at is over (its GTT cancelled at the broker)."""
    if recorded.status == TriggerStatus.EXPIRED:
        raise DomainError(f"{recorded.trigger_id} cannot be {verb}: it is expired ({recorded.status_message}); "
                          "nothing of it can fire")


def _kind_of(gtt: BrokerGtt) -> str:
    """The trigger kind of a GTT placed elsewhere (no record of ours says)."""
    if gtt.type == NATIVE_OCO:
        return TriggerKind.TWO_LEG
    return TriggerKind.SINGLE if len(gtt.rules) == 1 else TriggerKind.BRACKET


def _staged_leg(leg: dict) -> dict:
    """A staged bracket's exit leg as recorded (placed later as one OCO; see `stages`)."""
    prices = {k: Decimal(leg[k]) for k in ("trigger_price", "price") if leg.get(k) is not None}
    return {**leg, **prices, "status": None, "order_id": None, "message": None}
