"""A caller's own expiry (`expires_at` on place): when it comes, the watcher's lease holder
cancels the trigger at the broker and records it as expired, with an "expired" event (sent to the
trader when NOTIFY_EVENTS has it, as the broker's own expiries are).

It runs on every pass of the watcher's loop (at most RENEW_SECONDS apart, whatever the poll
interval), so a GTT ends within a few seconds of its time. A trigger any part of which fired is
never expired: it is recorded as the broker shows it (triggered, an OCO's other leg cancelled),
and a bracket whose entry filled keeps its target and stop-loss (the expiry was for an order that
never filled; it no longer applies). A cancel the broker refuses or fails is tried again on the
next pass.
"""
from __future__ import annotations

import logging
from typing import Callable

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.brokers.errors import BrokerError, InputRejected
from openalgo_gtt.domain.aggregate import fired_part
from openalgo_gtt.domain.clock import Clock, ist_text
from openalgo_gtt.domain.model import EventKind, TriggerStatus
from openalgo_gtt.domain.notifications import trigger_event
from openalgo_gtt.domain.records import RecordedTrigger
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.store.unit_of_work import Store

log = logging.getLogger(__name__)


def expiry_message(recorded: RecordedTrigger) -> str:
    return f"expired at {ist_text(recorded.expires_at)} IST (its expires_at): cancelled at the broker"


class Expiries:
    def __init__(self, broker: Broker, store: Store, notifications: Notifications, clock: Clock,
                 settle_seen: Callable[[str, list], object]):
        self.broker = broker
        self.store = store
        self.notifications = notifications
        self.clock = clock
        # The watcher's way of recording what the broker shows of a live trigger (a fire).
        self._settle_seen = settle_seen

    def run(self) -> list[str]:
        """Expire every live trigger whose time has come; the ids expired."""
        expired = []
        for recorded in self.store.orders.due_to_expire(self.clock.now()):
            try:
                if self._expire(recorded):
                    expired.append(recorded.trigger_id)
            except BrokerError as exc:
                log.warning("GTT %s is past its expires_at but the broker could not cancel it yet (%s): "
                            "trying again on the watcher's next pass", recorded.trigger_id, exc)
        return expired

    def _expire(self, recorded: RecordedTrigger) -> bool:
        gtts = [self.broker.get_gtt(broker_id) for broker_id in recorded.broker_ids]
        if fired_part(recorded.trigger_type, recorded.broker_ids, gtts) is not None:
            # A part fired (a bracket's entry filled): its exits protect a position now, and an
            # expiry meant for an order that never filled must not cancel them. The expiry no
            # longer applies; what the broker shows is recorded.
            self._settle_seen(recorded.trigger_id, gtts)
            self.store.orders.clear_expiry(recorded.trigger_id)
            log.info("GTT %s fired before its expires_at: the expiry no longer applies", recorded.trigger_id)
            return False
        if any(gtt is None or (not gtt.can_fire and not gtt.cancelled) for gtt in gtts):
            # Fired, ended at the broker, or no longer listed (Upstox omits completed GTTs):
            # recorded as the broker shows it, not as an expiry of ours.
            self._settle_seen(recorded.trigger_id, gtts)
            return False
        for broker_id, gtt in zip(recorded.broker_ids, gtts):
            if gtt.cancelled:
                continue
            try:
                self.broker.cancel_gtt(broker_id)
            except InputRejected:
                # Refused: it fired (or ended) between the read and the cancel.
                self._settle_seen(recorded.trigger_id, [self.broker.get_gtt(b) for b in recorded.broker_ids])
                return False
        now = self.clock.now()
        message = expiry_message(recorded)
        with self.store.unit_of_work() as uow:
            uow.set_status(recorded.trigger_id, TriggerStatus.EXPIRED, cancelled_at=now, message=message)
            self.notifications.emit(uow, trigger_event(EventKind.EXPIRED, now, recorded, message))
        log.info("GTT %s %s", recorded.trigger_id, message)
        return True
