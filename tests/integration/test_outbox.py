"""The outbox on a real database: the emitting port other services call inside their
transaction, the sender's backoff and give-up, and the NOTIFY_* settings."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from openalgo_gtt.config import ConfigError, load_settings
from openalgo_gtt.domain.model import EventKind
from openalgo_gtt.domain.notifications import DEFAULT_EVENTS, Event
from openalgo_gtt.services.notifications import Notifications, Outcome, Sender, backoff, send_test, url_id
from openalgo_gtt.store.models import NotifyDelivery, NotifyEvent
from openalgo_gtt.store.unit_of_work import Store

PEPPER = "p" * 40
URLS = ("json://127.0.0.1:9/a", "json://127.0.0.1:9/b")
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(db_engine):
    return Store(db_engine, sessionmaker(bind=db_engine, expire_on_commit=False), "test-holder")


def count(engine, model):
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def test_an_event_is_emitted_in_the_callers_transaction(store):
    notifications = Notifications(store.outbox, URLS, DEFAULT_EVENTS, PEPPER)
    with store.unit_of_work() as uow:
        notifications.emit(uow, Event(kind=EventKind.FOUND_LATE, at=T0, trigger_id="GTT-1", message="found late"))
    assert count(store.engine, NotifyEvent) == 1
    assert count(store.engine, NotifyDelivery) == 2  # one per URL
    with store.engine.connect() as conn:
        assert set(conn.scalars(select(NotifyDelivery.url_id))) == {url_id(PEPPER, url) for url in URLS}
        assert not any("127.0.0.1" in str(v) for v in conn.scalars(select(NotifyDelivery.url_id)))
    # Rolled back with the change that caused it.
    with pytest.raises(RuntimeError):
        with store.unit_of_work() as uow:
            notifications.emit(uow, Event(kind=EventKind.OUTCOME_UNKNOWN, at=T0, trigger_id="GTT-2"))
            raise RuntimeError("the change failed")
    assert count(store.engine, NotifyEvent) == 1
    # A kind not selected is kept as history, never sent.
    with store.unit_of_work() as uow:
        notifications.emit(uow, Event(kind=EventKind.PLACED, at=T0, trigger_id="GTT-3"))
    assert count(store.engine, NotifyEvent) == 2 and count(store.engine, NotifyDelivery) == 2
    assert [e.kind for e, _ in store.outbox.events_for("GTT-1")] == ["found_late"]


def test_the_backoff_is_5_s_doubling_to_5_minutes():
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_a_failing_url_is_retried_until_24_hours_then_failed(store):
    clock = [T0]
    attempts: list[datetime] = []

    def refuse(url, message, timeout):
        attempts.append(clock[0])
        return Outcome(False, "Service Unavailable (503)")

    notifications = Notifications(store.outbox, URLS[:1], DEFAULT_EVENTS, PEPPER)
    sender = Sender(notifications, lambda: True, timeout=1.0, deliver=refuse, clock=lambda: clock[0])
    with store.unit_of_work() as uow:
        notifications.emit(uow, Event(kind=EventKind.TRIGGERED, at=T0, trigger_id="GTT-1"))
    while clock[0] - T0 < timedelta(hours=25):
        sender.send_due(0)
        with store.engine.connect() as conn:  # to the next attempt's time (or past the window)
            row = conn.execute(select(NotifyDelivery.state, NotifyDelivery.next_attempt_at)).one()
        if row.state != "pending":
            break
        clock[0] = row.next_attempt_at.replace(tzinfo=timezone.utc)
    gaps = [(b - a).total_seconds() for a, b in zip(attempts, attempts[1:])]
    assert gaps[:7] == [5, 10, 20, 40, 80, 160, 300]  # the first retry within 5 s, then doubling
    assert set(gaps[7:]) == {300}
    assert attempts[-1] - T0 <= timedelta(hours=24)
    stats = store.outbox.stats()
    assert (stats.pending, stats.failed, stats.last_error) == (0, 1, "Service Unavailable (503)")


def test_a_delivered_event_is_not_sent_again(store):
    sent = []
    notifications = Notifications(store.outbox, URLS, DEFAULT_EVENTS, PEPPER)
    sender = Sender(notifications, lambda: True, timeout=1.0, deliver=lambda u, m, t: sent.append(u) or Outcome(True),
                    clock=lambda: T0)
    with store.unit_of_work() as uow:
        notifications.emit(uow, Event(kind=EventKind.TRIGGERED, at=T0, trigger_id="GTT-1"))
    assert sender.send_due(0) == 1 and sender.send_due(1) == 1
    assert sender.send_due(0) == 0 and sender.send_due(1) == 0
    assert sent == list(URLS)


def test_the_test_command_reports_each_url_masked():
    results = send_test(("json://bob:pw@127.0.0.1:9/x", "tgram://123:tok/456"), 1.0,
                        deliver=lambda url, m, t: Outcome(url.startswith("json"), None if url.startswith("json") else "x"))
    assert [(label, outcome.delivered) for label, outcome in results] == [
        ("1: json://127.0.0.1:9", True), ("2: tgram://…", False)]


def test_notify_settings(tmp_path):
    env = {"API_KEY_PEPPER": PEPPER}
    settings = load_settings({**env, "NOTIFY_URLS": "json://a:b@h.example/x, ntfy://topic"}, tmp_path)
    assert settings.notify_urls == ("json://a:b@h.example/x", "ntfy://topic")
    assert "h.example" not in repr(settings)
    assert load_settings(env, tmp_path).notify_urls == ()
    assert load_settings(env, tmp_path).notify_events == DEFAULT_EVENTS
    assert "placed" not in DEFAULT_EVENTS and "triggered" in DEFAULT_EVENTS
    assert load_settings({**env, "NOTIFY_EVENTS": "triggered, rejected"}, tmp_path).notify_events == (
        "triggered", "rejected")
    with pytest.raises(ConfigError) as bad_url:
        load_settings({**env, "NOTIFY_URLS": "tgram://secret-token/1 not-a-url"}, tmp_path)
    assert "secret-token" not in str(bad_url.value) and "NOTIFY_URLS=(hidden)" in str(bad_url.value)
    with pytest.raises(ConfigError, match="NOTIFY_EVENTS='fired': unknown event 'fired'"):
        load_settings({**env, "NOTIFY_EVENTS": "fired"}, tmp_path)


def test_apprise_never_logs_a_urls_secret(caplog):
    import logging

    from openalgo_gtt.services.notifications import apprise_deliver
    from openalgo_gtt.domain.notifications import Message

    url = "json://alice:pw-secret-77@127.0.0.1:1/hook-secret-path?token=tok-secret-99"
    with caplog.at_level(logging.DEBUG):
        outcome = apprise_deliver(url, Message("t", "b", "info"), 1.0)
    assert not outcome.delivered
    text = caplog.text + (outcome.error or "")
    assert caplog.records  # Apprise did log the failure
    for secret in ("pw-secret-77", "hook-secret-path", "tok-secret-99", "alice"):
        assert secret not in text


def test_the_outbox_is_kept_as_long_as_the_audit_trail_but_never_undelivered(store):
    from openalgo_gtt.services.notifications import OutboxRetention

    notifications = Notifications(store.outbox, URLS[:1], DEFAULT_EVENTS, PEPPER)
    old, recent = T0 - timedelta(days=91), T0 - timedelta(days=89)
    with store.unit_of_work() as uow:
        for at, trigger in ((old, "GTT-OLD"), (old, "GTT-OLD-PENDING"), (recent, "GTT-RECENT")):
            notifications.emit(uow, Event(kind=EventKind.TRIGGERED, at=at, trigger_id=trigger))
    for trigger in ("GTT-OLD", "GTT-RECENT"):
        with store.engine.begin() as conn:
            conn.execute(NotifyDelivery.__table__.update()
                         .where(NotifyDelivery.event_id.in_(select(NotifyEvent.id).where(NotifyEvent.trigger_id == trigger)))
                         .values(state="delivered"))
    retention = OutboxRetention(store.outbox, 90, clock=lambda: T0)
    assert retention.run() == 1
    assert store.outbox.events_for("GTT-OLD") == []
    assert [e.trigger_id for e, _ in store.outbox.events_for("GTT-OLD-PENDING")] == ["GTT-OLD-PENDING"]
    assert count(store.engine, NotifyDelivery) == 2
    assert OutboxRetention(store.outbox, 0, clock=lambda: T0).run() == 0
