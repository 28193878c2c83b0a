"""The GTT watcher: keeps OCO pairs honest and every recorded GTT's status current.

An OCO is two Upstox SINGLE GTTs. As soon as one leg leaves SCHEDULED (it fired, or was
cancelled, expired or rejected at Upstox), the other is cancelled and the pair is over. The
watcher learns of changes two ways: Upstox's GTT update webhook (`settle_broker_gtt`, called
by the webhook endpoint, in whichever worker receives it) and, as a safety net, a poll of the
GTT list every `poll_seconds` (`sync`), run by exactly one process: the holder of a database
lease. On start every process reconciles every open pair once before it serves (settling is
idempotent, so this needs no lease, and a restart after a crash need not wait for the dead
holder's lease to lapse).

The lease holder's poll also runs the housekeeping it is given: the audit retention, which
deletes rows past AUDIT_RETENTION_DAYS at most once an hour, in bounded batches.

Settling is idempotent: cancelling a leg that is already gone is harmless, so the webhook and
the poller (even in two processes) may race without harm.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from dataclasses import dataclass, field
from typing import Callable

from openalgo_gtt.brokers.base import Broker
from openalgo_gtt.domain.model import CANCELLED, BrokerGtt, TriggerStatus
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.gtt import gtt_status
from openalgo_gtt.domain.oco import WAITING, cancelled_by_gateway, leg_state, pair_status, settled_message
from openalgo_gtt.store.leases import DatabaseLease
from openalgo_gtt.store.gtt_orders import GttOrders
from openalgo_gtt.store.models import GttOrder

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=15)
RENEW_SECONDS = 5.0


@dataclass
class SyncReport:
    pairs_settled: list[str] = field(default_factory=list)
    statuses_changed: list[str] = field(default_factory=list)
    places_recovered: int = 0


class GttWatcher:
    def __init__(self, broker: Broker, orders: GttOrders, lease: DatabaseLease, poll_seconds: float,
                 recover: Callable[[], int] | None = None, housekeeping: Callable[[], object] | None = None,
                 stage: Callable[[], object] = lambda: None):
        self.broker = broker
        # Work the lease holder does on its poll besides the broker (the audit retention: it
        # throttles itself to once an hour).
        self._housekeeping = housekeeping
        self._recover = recover  # settles places whose outcome was lost (see Gateway.recover_unsettled)
        self._stage = stage  # places staged brackets' exits (services/staged_bracket.py; Kite only)
        self.orders = orders
        self.lease = lease
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ---------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Settle lost places, then one list call: settle every open pair and bring every
        recorded status up to date."""
        report = SyncReport()
        if self._recover is not None:
            report.places_recovered = self._recover()
        self._stage()
        active = self.orders.list(status=TriggerStatus.ACTIVE)
        if not active:
            return report
        listed = {gtt.gtt_id: gtt for gtt in self.broker.list_gtts()}
        for order in active:
            legs = [listed.get(broker_id) for broker_id in order.broker_ids]
            try:
                if order.is_pair:  # two broker GTTs kept in step (a native OCO is one GTT)
                    if self._settle_pair(order, legs[0], legs[1]):
                        report.pairs_settled.append(order.trigger_id)
                elif legs[0] is not None and self._update_status(order, legs[0]):
                    report.statuses_changed.append(order.trigger_id)
            except BrokerError as exc:  # this one is retried next pass; the others go on
                log.warning("could not settle %s: %s", order.trigger_id, exc)
        return report

    def settle_broker_gtt(self, gtt_id: str) -> bool:
        """React to one GTT's update (the webhook): settle its pair, or refresh its status."""
        # An OCO leg maps to its pair; a single or bracket GTT's id is its trigger id.
        leg = self.orders.legs_by_broker_id([gtt_id]).get(gtt_id)
        order = self.orders.get(leg.trigger_id if leg is not None else gtt_id)
        if order is None or order.status != TriggerStatus.ACTIVE:
            return False  # not one of ours, or already settled
        gtts = [self.broker.get_gtt(broker_id) for broker_id in order.broker_ids]
        if order.is_pair:
            return self._settle_pair(order, gtts[0], gtts[1])
        return gtts[0] is not None and self._update_status(order, gtts[0])

    def _update_status(self, order: GttOrder, gtt: BrokerGtt) -> bool:
        status = gtt_status(gtt)
        message = next((rule.message for rule in gtt.rules if rule.message), None)
        self.orders.set_leg_status(gtt.gtt_id, leg_state(gtt), message)
        return self.orders.set_status(order.trigger_id, status, message)

    def _settle_pair(self, order: GttOrder, lower: BrokerGtt | None, upper: BrokerGtt | None) -> bool:
        states = (leg_state(lower), leg_state(upper))
        for broker_id, state in zip(order.broker_ids, states):
            self.orders.set_leg_status(broker_id, state)
        status = pair_status(*states)
        if status == TriggerStatus.ACTIVE:
            return False
        # One leg is done: the other must not fire too. Cancel every leg still waiting.
        ids = order.broker_ids
        for i in (0, 1):
            if states[i] in WAITING:
                self.broker.cancel_gtt(ids[i])  # a failure leaves the pair active: retried next pass
                why = cancelled_by_gateway(CANCELLED, ids[1 - i], states[1 - i])
                self.orders.set_leg_status(ids[i], CANCELLED, why)
        message = settled_message(order.broker_ids, states)
        self.orders.set_status(order.trigger_id, status, message)
        log.info("OCO %s settled: %s", order.trigger_id, message)
        return True

    def housekeep(self) -> None:
        """The poll's work besides the broker; a failure is logged, never stops the poll."""
        if self._housekeeping is None:
            return
        try:
            self._housekeeping()
        except Exception:  # noqa: BLE001 - housekeeping must not stop the watcher
            log.exception("watcher housekeeping failed")

    # -- the background loop ----------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass now (the webhook calls this so the lease holder looks at once)."""
        self._wake.set()

    def run_forever(self) -> None:
        holding = False
        last_sync = float("-inf")
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                # The lease is renewed every few seconds whatever the poll interval, so a dead
                # holder is replaced within LEASE_TTL.
                if self.lease.acquire():
                    if not holding:
                        log.info("GTT watcher: this process (%s) holds the lease", self.lease.holder)
                    holding = True
                    if woken or time.monotonic() - last_sync >= self.poll_seconds:
                        last_sync = time.monotonic()
                        self.housekeep()
                        self.sync()
                else:
                    holding = False
            except BrokerError as exc:
                log.warning("watcher pass failed at the broker: %s", exc)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad pass
                log.exception("watcher pass failed")
            self._wake.wait(min(self.poll_seconds, RENEW_SECONDS))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run_forever, name="gtt-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.lease.release()
        except Exception:  # noqa: BLE001 - best effort on the way out
            log.debug("lease release failed", exc_info=True)
