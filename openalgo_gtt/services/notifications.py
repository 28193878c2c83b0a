"""Telling the trader: events into the outbox, and one sender delivering them through Apprise.

Emitting (the port other services call)::

    with store.unit_of_work() as uow:
        ...                                   # the state change
        notifications.emit(uow, Event(kind=EventKind.FOUND_LATE, at=utcnow(), trigger_id=...))

The event is written in that transaction, with one delivery row per configured URL when its
kind is selected (NOTIFY_EVENTS); it is kept either way, as the trigger's event history.

Delivering: one worker thread per URL, running only while this process holds the watcher's
lease (one sender across workers and hosts). Each takes its URL's due deliveries oldest first,
sends each with a per-delivery timeout, and marks it delivered, or due again after a backoff
(5 s, doubling to at most 5 minutes) until 24 hours after the event, then failed. A URL that is
down or hangs delays only its own thread; the API never waits for any of it.

URLs are secrets: they are known to the database only as HMACs (`url_id`) and shown only masked
(`mask_url`); error text is scrubbed of every part of a URL before it is stored or logged.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from openalgo_gtt.domain.clock import ist_text, utcnow
from openalgo_gtt.domain.model import EventLevel
from openalgo_gtt.domain.notifications import Event, Message, mask_url, redact, render
from openalgo_gtt.services.retention import Retention
from openalgo_gtt.store.outbox import Due, Outbox
from openalgo_gtt.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=5)
RETRY_WINDOW = timedelta(hours=24)
IDLE_POLL_SECONDS = 1.0  # how often an idle worker looks for due deliveries (other processes' events)
BATCH = 20


def backoff(failures: int) -> timedelta:
    """The wait after the `failures`-th failed attempt: 5 s, 10 s, 20 s, ... at most 5 minutes."""
    return min(FIRST_RETRY * (2 ** min(max(failures - 1, 0), 20)), MAX_BACKOFF)


def url_id(pepper: str, url: str) -> str:
    """How the database names a URL: an HMAC under the pepper, never the URL."""
    return hmac.new(pepper.encode(), b"notify-url:" + url.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    error: str | None = None  # redacted


Deliver = Callable[[str, Message, float], Outcome]


class _Scrubber(logging.Filter):
    """On Apprise's logger: every record's text with the notification URLs' secrets removed
    (Apprise's own messages can name a chat id, a topic or, in a connection error, the whole
    service URL with its token), so the gateway's logs never carry them."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls:
            record.msg, record.args = redact(record.getMessage(), sorted(self.urls)), ()
        return True


_SCRUBBER = _Scrubber()
logging.getLogger("apprise").addFilter(_SCRUBBER)
# Apprise's DEBUG lines include request URLs and payloads: never below INFO, whatever LOG_LEVEL.
logging.getLogger("apprise").setLevel(logging.INFO)


def apprise_deliver(url: str, message: Message, timeout: float) -> Outcome:
    """Send one message to one Apprise URL; success only when the service accepted it."""
    import apprise  # imported on first delivery: a gateway without NOTIFY_URLS never loads it

    _SCRUBBER.urls.add(url)

    notifier = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    if not notifier.add(url):
        return Outcome(False, f"{mask_url(url)} is not a URL Apprise understands")
    # The per-delivery timeout replaces Apprise's socket defaults (4 s), unless the URL sets its
    # own (`cto=`, `rto=`); either way never more than NOTIFY_TIMEOUT.
    own = {name: f"{name}=" in url.lower() for name in ("cto", "rto")}
    for service in notifier:
        for name, attribute in (("cto", "socket_connect_timeout"), ("rto", "socket_read_timeout")):
            if hasattr(service, attribute):
                current = getattr(service, attribute) or timeout
                setattr(service, attribute, min(current, timeout) if own[name] else timeout)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        try:
            sent = notifier.notify(title=message.title, body=message.body,
                                   notify_type=apprise.NotifyType(message.level))
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is one failed delivery
            sent, detail = False, f"{type(exc).__name__}: {exc}"
        else:
            detail = captured.getvalue().strip().splitlines()[-1] if captured.getvalue().strip() else ""
    if sent:
        return Outcome(True)
    return Outcome(False, redact(detail or "the service did not accept the message", [url])[:500])


def warm_apprise(urls: tuple[str, ...]) -> None:
    """Import Apprise and load the plugins `urls` name, now (at start) rather than in the first
    delivery: on a busy machine that first import takes seconds, which delayed the day's first
    notification, and counted against the delivery's own time limit (`_bounded`), where running
    over it made a delivery that still went out count as failed, so it was sent again."""
    import apprise

    _SCRUBBER.urls.update(urls)
    notifier = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    for url in urls:
        notifier.add(url)  # parses the URL and loads its plugin; sends nothing


def _bounded(deliver: Deliver, url: str, message: Message, timeout: float) -> Outcome:
    """`deliver` with a hard stop: a service that keeps a connection open past its socket
    timeouts (trickling bytes) is a failed attempt after `timeout` + 2 s, not a stuck worker."""
    result: list[Outcome] = []
    worker = threading.Thread(target=lambda: result.append(deliver(url, message, timeout)),
                              name="notify-delivery", daemon=True)
    worker.start()
    worker.join(timeout + 2)
    if result:
        return result[0]
    return Outcome(False, f"no answer within {timeout:g} s")


class Notifications:
    """The emitting port (`emit`) and what health and the CLI show of notifications."""

    def __init__(self, outbox: Outbox, urls: tuple[str, ...], kinds: tuple[str, ...], pepper: str):
        self.outbox = outbox
        self.urls = urls
        self.kinds = frozenset(kinds)
        self.url_ids = tuple(url_id(pepper, url) for url in urls)
        self._wakers: list[Callable[[], None]] = []

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    def sends(self, kind: str) -> bool:
        """Whether events of `kind` go to any URL (a place records `placed` only then: the caller
        already has the answer, and every place would otherwise pay for a history row)."""
        return bool(self.url_ids) and str(kind) in self.kinds

    def emit(self, uow: UnitOfWork, event: Event) -> None:
        """Record `event` in `uow`'s transaction; delivered after it commits. Call it inside the
        `with store.unit_of_work() as uow:` block that records the change the event reports."""
        selected = self.url_ids if str(event.kind) in self.kinds else ()
        uow.add_event(event, selected)
        if selected:
            for wake in self._wakers:  # before the commit: the worker also looks again within a second
                wake()

    def on_emit(self, wake: Callable[[], None]) -> None:
        self._wakers.append(wake)

    def masked_urls(self) -> list[str]:
        return [f"{i}: {mask_url(url)}" for i, url in enumerate(self.urls, start=1)]

    def describe(self) -> dict:
        """For /api/health: the masked URLs, deliveries pending and given up, the last error."""
        stats = self.outbox.stats()
        return {"enabled": self.enabled, "urls": self.masked_urls(), "pending": stats.pending,
                "failed": stats.failed, "last_error": stats.last_error,
                "last_error_at": ist_text(stats.last_error_at) or None}

    def history(self, trigger_id: str) -> list[dict]:
        """A trigger's events, oldest first, as its order status lists them."""
        out = []
        for event, states in self.outbox.events_for(trigger_id):
            message = render(event)
            out.append({"event": str(event.kind), "at": ist_text(event.at), "message": message.line,
                        "deliveries": states})
        return out


class OutboxRetention(Retention):
    """Keeps the outbox as long as the audit trail (AUDIT_RETENTION_DAYS; 0 keeps it forever):
    events older than that, none of whose deliveries is still pending, go with their deliveries,
    one batch a poll (see services/retention.py)."""

    what = "outbox events"

    def __init__(self, outbox: Outbox, days: int, **options):
        super().__init__(outbox, days, **{"max_batches": 1, **options})


class Sender:
    """Delivers the outbox: one thread per URL, working only while `may_send()` (this process
    holds the watcher's lease)."""

    def __init__(self, notifications: Notifications, may_send: Callable[[], bool], timeout: float,
                 deliver: Deliver = apprise_deliver, clock: Callable[[], datetime] = utcnow,
                 idle_poll: float = IDLE_POLL_SECONDS):
        self.notifications = notifications
        self.outbox = notifications.outbox
        self._may_send = may_send
        self._timeout = timeout
        self._deliver = deliver
        self._clock = clock
        self._idle_poll = idle_poll
        self._stop = threading.Event()
        self._wakes = [threading.Event() for _ in notifications.urls]
        self._threads: list[threading.Thread] = []
        notifications.on_emit(self.wake)

    def wake(self) -> None:
        for event in self._wakes:
            event.set()

    def send_due(self, index: int) -> int:
        """Attempt every due delivery to URL `index` once; returns how many were attempted."""
        url, uid = self.notifications.urls[index], self.notifications.url_ids[index]
        attempted = 0
        while not self._stop.is_set():
            batch = self.outbox.due(uid, self._clock(), BATCH)
            for due in batch:
                self._attempt(url, due)
                attempted += 1
            if len(batch) < BATCH:
                return attempted
        return attempted

    def _attempt(self, url: str, due: Due) -> None:
        message = render(due.event)
        outcome = _bounded(self._deliver, url, message, self._timeout)
        now = self._clock()
        if outcome.delivered:
            self.outbox.delivered(due.delivery_id, now)
            return
        error = outcome.error or "not delivered"
        retry = now + backoff(due.attempts + 1)
        if retry - due.event_at > RETRY_WINDOW:
            self.outbox.given_up(due.delivery_id, now, error)
            log.warning("notification to %s given up after 24 h: %s", mask_url(url), error)
        else:
            self.outbox.retry_at(due.delivery_id, retry, error)
            log.info("notification to %s failed (%s); retrying at %s", mask_url(url), error, ist_text(retry))

    def _run(self, index: int) -> None:
        wake = self._wakes[index]
        while not self._stop.is_set():
            wake.clear()
            try:
                if self._may_send():
                    self.send_due(index)
            except Exception:  # noqa: BLE001 - the sender must outlive a bad pass (the database away)
                log.exception("notification sender pass failed")
            wake.wait(self._idle_poll)

    def start(self) -> None:
        if self._threads or not self.notifications.urls:
            return
        if self._deliver is apprise_deliver:
            warm_apprise(self.notifications.urls)
        dropped = self.outbox.drop_other_urls(self.notifications.url_ids, self._clock())
        if dropped:
            log.warning("%d undelivered notifications were for URLs no longer in NOTIFY_URLS", dropped)
        for index in range(len(self.notifications.urls)):
            thread = threading.Thread(target=self._run, args=(index,), name=f"notify-{index + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=self._timeout + 3)
        self._threads = []


def send_test(urls: tuple[str, ...], timeout: float, deliver: Deliver = apprise_deliver) -> list[tuple[str, Outcome]]:
    """`notify test`: one message to every URL, now; (masked URL, outcome) each."""
    message = Message("openalgo-gtt test", f"Notifications work.\n{ist_text(utcnow())} IST", EventLevel.INFO)
    return [(f"{i}: {mask_url(url)}", _bounded(deliver, url, message, timeout))
            for i, url in enumerate(urls, start=1)]
