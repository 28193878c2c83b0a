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
deletes rows past AUDIT_RETENTION_DAYS at most once an hour, in bounded batches, and the Upstox
token's daily expiry reminder (services/token_alerts.py).

Settling is idempotent: cancelling a leg that is already gone is harmless, so the webhook and
the poller (even in two processes) may race without harm.

A pass costs what changed, not what is live: the live triggers are read in two statements,
compared with the broker's list in memory (`domain/watch.py`), and only the triggers that
changed are written, all in one transaction together with the events the changes give the
trader (the notifications outbox). Each write is conditional on the record being what was read,
so a change seen by two observers at once is recorded, and notified, once. The sandbox broker is
not polled: a tick settles what it fired as it fires it (services/sandbox_feed.py).
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from dataclasses import dataclass, field
from typing import Callable

from openalgo_gtt.brokers.base import Broker, TickSink
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.clock import SYSTEM_CLOCK, Clock
from openalgo_gtt.domain.fill import LegFill
from openalgo_gtt.domain.model import CANCELLED, BrokerGtt
from openalgo_gtt.domain.oco import leg_state
from openalgo_gtt.domain.rule_status import Phase, phase
from openalgo_gtt.domain.watch import Change, Watched, observe
from openalgo_gtt.services.fills import FIRES_PER_PASS, OrderFills
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.store.leases import DatabaseLease
from openalgo_gtt.store.unit_of_work import Store

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=15)
RENEW_SECONDS = 5.0
CANCEL_TRIES = 3  # an OCO leg that must not fire: its cancel is sent this many times in a pass


class OneListing:
    """The broker's GTT list, read at most once, and only when someone asks: a pass with
    nothing to settle or watch makes no list call."""

    def __init__(self, broker: Broker):
        self._broker = broker
        self._listed: list[BrokerGtt] | None = None

    def __call__(self) -> list[BrokerGtt]:
        if self._listed is None:
            self._listed = self._broker.list_gtts()
        return self._listed


@dataclass
class SyncReport:
    pairs_settled: list[str] = field(default_factory=list)
    statuses_changed: list[str] = field(default_factory=list)
    places_recovered: int = 0


class GttWatcher:
    def __init__(self, broker: Broker, store: Store, lease: DatabaseLease, poll_seconds: float, *,
                 settle_attempts: Callable[[Callable[[], list[BrokerGtt]]], list[str]],
                 notifications: Notifications,
                 housekeeping: Callable[[], object] | list[Callable[[], object]] | None = None,
                 fills: OrderFills, stage: Callable[[], object] = lambda: None, clock: Clock = SYSTEM_CLOCK):
        self.broker = broker
        self.store = store
        self.orders = store.orders
        # Work the lease holder does on its poll besides the broker (the audit retention: it
        # throttles itself to once an hour; the token-expiry check, once a day).
        self._housekeeping = [housekeeping] if callable(housekeeping) else list(housekeeping or ())
        # Settles place attempts whose outcome is unknown, and lapsed ones' late GTTs
        # (services/attempts.py AttemptDriver.settle_all), from the pass's one listing.
        self._settle_attempts = settle_attempts
        self.notifications = notifications
        self._stage = stage  # places staged brackets' exits (services/staged_bracket.py; Kite only)
        self.fills = fills  # a fired leg's order, looked up before its fire is recorded
        self.lease = lease
        self.clock = clock
        self.poll_seconds = poll_seconds
        # The sandbox reports every change as it makes it (sandbox_feed settles what a tick
        # fired): polling it would only re-read what is already recorded.
        self.polls_broker = not isinstance(broker, TickSink)
        self.holding = False  # this process holds the lease (the notification sender runs only then)
        # Ends the triggers whose caller's expiry has come (services/expiry.py), every pass: set
        # by the gateway once the expiry service is built (it records through this watcher).
        self.expire: Callable[[], object] = lambda: None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ---------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """One pass on one list call, shared by all three: settle the place attempts whose
        outcome is unknown and lapsed ones' late GTTs, then compare every live trigger with the
        broker in memory, and write only the triggers that changed, in one transaction."""
        report = SyncReport()
        listing = OneListing(self.broker)
        report.places_recovered = len(self._settle_attempts(listing))
        self._stage()
        watched = self.orders.watched()
        if not watched:
            return report
        listed = {gtt.gtt_id: gtt for gtt in listing()}
        self._record([(w, [listed.get(broker_id) for broker_id in w.broker_ids]) for w in watched], report)
        return report

    def settle_broker_gtt(self, gtt_id: str) -> bool:
        """React to one GTT's update (the webhook, a sandbox tick): settle its pair, or refresh
        its status."""
        return self.settle_broker_gtts([gtt_id]) > 0

    def settle_broker_gtts(self, gtt_ids: list[str]) -> int:
        """React to several GTTs' updates at once; returns how many triggers changed."""
        # An OCO leg maps to its pair; a single or bracket GTT's id is its trigger id.
        legs = self.orders.legs_by_broker_id(list(gtt_ids))
        trigger_ids = list(dict.fromkeys(legs[g].trigger_id if g in legs else g for g in gtt_ids))
        watched = self.orders.watched(trigger_ids)  # only live ones: settled or not ours is nothing to do
        if not watched:
            return 0
        report = SyncReport()
        self._record([(w, [self.broker.get_gtt(broker_id) for broker_id in w.broker_ids]) for w in watched], report)
        return len(report.pairs_settled) + len(report.statuses_changed)

    def settle_seen(self, trigger_id: str, gtts: list[BrokerGtt | None]) -> bool:
        """Record what `gtts` (read already, by the status call) say of one live trigger."""
        watched = self.orders.watched([trigger_id])
        if not watched:
            return False
        report = SyncReport()
        self._record([(watched[0], gtts)], report)
        return bool(report.pairs_settled or report.statuses_changed)

    def _record(self, observed: list[tuple[Watched, list[BrokerGtt | None]]], report: SyncReport) -> None:
        """Compare in memory; cancel the OCO legs that must not fire; then write every change,
        and the events it gives, in one transaction."""
        now = self.clock.now()
        changes: list[Change] = []
        for watched, gtts in observed:
            change = self._settled(watched, gtts, now)
            if change is not None:
                changes.append(change)
        if not changes:
            return
        pairs = {watched.trigger_id for watched, _ in observed if watched.is_pair}
        fired = self._fired_legs(changes)
        with self.store.unit_of_work() as uow:
            for change in changes:
                if not uow.record_change(change):
                    continue  # another observer (the webhook in another worker) recorded it first
                for leg in fired.get(change.trigger_id, ()):
                    uow.save_fill(leg)
                for event in change.events:
                    self.notifications.emit(uow, event)
                if change.trigger_id in pairs:
                    if change.status != change.was_status:
                        report.pairs_settled.append(change.trigger_id)
                        log.info("OCO %s settled: %s", change.trigger_id, change.message)
                elif change.status != change.was_status or change.events:
                    report.statuses_changed.append(change.trigger_id)

    def _fired_legs(self, changes: list[Change]) -> dict[str, list[LegFill]]:
        """Each fired leg's order looked up (a bounded number a pass), its fill put into the
        "triggered" event; the legs to follow, by trigger. Done before the unit of work: a broker
        call never runs inside one."""
        budget, fired = [FIRES_PER_PASS], {}
        for change in changes:
            change.events, legs = self.fills.with_fills(change.events, budget)
            if legs:
                fired[change.trigger_id] = legs
        return fired

    def _settled(self, watched: Watched, gtts: list[BrokerGtt | None], now: datetime) -> Change | None:
        """The change to record for one trigger, once every OCO leg it must cancel is cancelled.

        A pass never ends with one leg of a pair live and the other over: a cancel that fails is
        sent again at once (CANCEL_TRIES in all; the sandbox is not polled, so for it there is no
        next pass but the next tick). A leg that is no longer waiting when read again was
        cancelled (this cancel's answer was lost, or someone else's) or fired meanwhile: then the
        pair is observed again, both legs read afresh. Only when every try failed is the trigger
        left unrecorded, still active, for the next pass."""
        change = observe(watched, gtts, now)
        pending = list(change.to_cancel) if change is not None else []
        for attempt in range(1, CANCEL_TRIES + 1):
            failed = []
            for broker_id in pending:
                try:
                    self.broker.cancel_gtt(broker_id)
                except BrokerError as exc:
                    log.warning("could not cancel %s of %s (try %d of %d): %s", broker_id, watched.trigger_id,
                                attempt, CANCEL_TRIES, exc)
                    failed.append(broker_id)
            if not failed:
                return change
            pending = []
            for broker_id in failed:
                try:
                    state = leg_state(self.broker.get_gtt(broker_id))
                except BrokerError:
                    pending.append(broker_id)  # unknown: send the cancel again
                    continue
                if phase(state) is Phase.WAITING:
                    pending.append(broker_id)
                elif state != CANCELLED:  # it fired (or ended) meanwhile: what to record has changed
                    try:
                        fresh = [self.broker.get_gtt(b) for b in watched.broker_ids]
                    except BrokerError:
                        return None  # the next pass reads it again
                    again = observe(watched, fresh, now)
                    return again if again is not None and not again.to_cancel else None
            if not pending:
                return change
        log.warning("could not settle %s: a leg is still live after %d tries; the next pass tries again",
                    watched.trigger_id, CANCEL_TRIES)
        return None

    def housekeep(self) -> None:
        """The poll's work besides the broker; a failure is logged, never stops the poll."""
        for job in self._housekeeping:
            try:
                job()
            except Exception:  # noqa: BLE001 - housekeeping must not stop the watcher (nor the next job)
                log.exception("watcher housekeeping failed")

    # -- the background loop ----------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass now (the webhook calls this so the lease holder looks at once)."""
        self._wake.set()

    def run_forever(self) -> None:
        last_sync = float("-inf")
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                # The lease is renewed every few seconds whatever the poll interval, so a dead
                # holder is replaced within LEASE_TTL.
                if self.lease.acquire():
                    if not self.holding:
                        log.info("GTT watcher: this process (%s) holds the lease", self.lease.holder)
                    self.holding = True
                    self._expire_due()
                    if woken or self.clock.monotonic() - last_sync >= self.poll_seconds:
                        last_sync = self.clock.monotonic()
                        self.housekeep()
                        if self.polls_broker:
                            self.sync()
                        else:
                            self._settle_attempts(OneListing(self.broker))
                else:
                    self.holding = False
            except BrokerError as exc:
                log.warning("watcher pass failed at the broker: %s", exc)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad pass
                log.exception("watcher pass failed")
            self._wake.wait(min(self.poll_seconds, RENEW_SECONDS))

    def _expire_due(self) -> None:
        """End the triggers whose caller's expiry has come; a failure here (the database away)
        is logged and tried again next pass, never a reason to skip the pass's broker sync."""
        try:
            self.expire()
        except Exception:  # noqa: BLE001 - the OCO settling below must still run
            log.exception("ending GTTs at their expires_at failed; the next pass tries again")

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
        self.holding = False
        try:
            self.lease.release()
        except Exception:  # noqa: BLE001 - best effort on the way out
            log.debug("lease release failed", exc_info=True)

