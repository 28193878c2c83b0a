"""Events that come from outside the watcher: the daily trade limit reached, the Upstox token's
expiry reminder (08:30 IST on weekdays) and Upstox rejecting the token."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy.orm import sessionmaker

from openalgo_gtt.brokers.base import BrokerCall
from openalgo_gtt.domain.clock import IST
from openalgo_gtt.domain.notifications import DEFAULT_EVENTS, render
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.token_alerts import TokenAlerts
from openalgo_gtt.services.tokens import TokenProvider
from openalgo_gtt.store.unit_of_work import Store

URL = ("json://127.0.0.1:9/x",)


@pytest.fixture
def store(db_engine):
    return Store(db_engine, sessionmaker(bind=db_engine, expire_on_commit=False), "test-holder")


def kinds(store, since=datetime(2000, 1, 1, tzinfo=timezone.utc)):
    from sqlalchemy import select

    from openalgo_gtt.store.models import NotifyEvent

    with store.engine.connect() as conn:
        return list(conn.scalars(select(NotifyEvent.kind).where(NotifyEvent.created_at >= since).order_by(NotifyEvent.id)))


def ist(y, m, d, hh, mm):
    return datetime(y, m, d, hh, mm, tzinfo=IST).astimezone(timezone.utc)


class StoredLogin:
    """The one thing TokenAlerts asks of the token provider."""

    def __init__(self, expires_at):
        self.expires_at = expires_at

    def known_expiry(self):
        return self.expires_at


def test_the_expiry_reminder_comes_once_at_0830_ist_on_weekdays(store):
    tonight = ist(2026, 12, 3, 3, 30)  # Wednesday 2 December's login expires at 03:30 on Thursday
    clock = [ist(2026, 12, 2, 8, 29)]
    notifications = Notifications(store.outbox, URL, DEFAULT_EVENTS, "p" * 40)
    alerts = TokenAlerts(StoredLogin(tonight), store, notifications, clock=lambda: clock[0])
    assert not alerts.check_expiry()  # 08:29
    clock[0] = ist(2026, 12, 2, 8, 30)
    assert alerts.check_expiry()
    clock[0] = ist(2026, 12, 2, 9, 0)
    assert not alerts.check_expiry()
    # Another process (a new lease holder after a restart) finds it sent.
    other = TokenAlerts(StoredLogin(tonight), store, notifications, clock=lambda: clock[0])
    assert not other.check_expiry()
    assert kinds(store) == ["token_expiring"]
    ((event, deliveries),) = store.outbox.events_for(None)
    assert render(event).title == "Upstox token expires tonight" and deliveries == ["pending"]
    assert "2026-12-03 03:30:00" in event.message and "log in again" in event.message


def test_no_reminder_on_a_weekend_for_a_renewed_or_unknown_expiry(store):
    notifications = Notifications(store.outbox, URL, DEFAULT_EVENTS, "p" * 40)
    saturday = ist(2026, 12, 5, 9, 0)
    assert not TokenAlerts(StoredLogin(ist(2026, 12, 6, 3, 30)), store, notifications,
                           clock=lambda: saturday).check_expiry()
    wednesday = ist(2026, 12, 2, 9, 0)
    renewed = ist(2026, 12, 4, 3, 30)  # not tonight's expiry
    assert not TokenAlerts(StoredLogin(renewed), store, notifications, clock=lambda: wednesday).check_expiry()
    assert not TokenAlerts(StoredLogin(None), store, notifications, clock=lambda: wednesday).check_expiry()
    assert kinds(store) == []


def test_a_rejected_token_is_told_once_per_token(store):
    notifications = Notifications(store.outbox, URL, DEFAULT_EVENTS, "p" * 40)
    provider = TokenProvider(None, configured_token="tok-1", configured_source="environment")
    provider.on_rejected = TokenAlerts(provider, store, notifications).rejected
    provider.current()
    for _ in range(3):
        provider.observe(BrokerCall("GET", "/v3/order/gtt", 401, 12.0))
    assert kinds(store) == ["token_rejected"]
    provider.observe(BrokerCall("GET", "/v3/order/gtt", 200, 12.0))  # accepted again, then rejected again
    provider.observe(BrokerCall("GET", "/v3/order/gtt", 401, 12.0))
    assert kinds(store) == ["token_rejected", "token_rejected"]


def test_the_place_that_fills_the_day_tells_the_trader(gateway, client, api_key):
    from openalgo_gtt.store.instruments import ensure_instruments

    ensure_instruments(gateway.engine)
    def post(path, **fields):
        return client.post(f"/api/v1/{path}", data=json.dumps({"apikey": api_key, **fields}),
                           content_type="application/json")

    assert post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.50}]).status_code == 200
    body = {"strategy": "x", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
            "product": "CNC", "quantity": 1, "pricetype": "LIMIT", "price": 0}
    for i in range(5):  # the settings fixture's DAILY_TRADE_LIMIT
        assert post("placegtt", **body, triggerprice_tg=9.61 + i / 100).status_code == 200
        assert kinds(gateway.store) == ([] if i < 4 else ["daily_limit_reached"])
    assert post("placegtt", **body, triggerprice_tg=9.90).status_code == 429
    assert post("placegtt", **body, triggerprice_tg=9.91, force=True).status_code == 200
    assert kinds(gateway.store) == ["daily_limit_reached"]
    ((event, _),) = gateway.store.outbox.events_for(None)
    assert event.message.startswith("5 of 5 trades today: further places are refused until midnight IST")


def test_modify_and_cancel_through_the_api_are_kept_as_events_not_sent_by_default(gateway, client, api_key):
    from openalgo_gtt.store.instruments import ensure_instruments

    ensure_instruments(gateway.engine)

    def post(path, **fields):
        return client.post(f"/api/v1/{path}", data=json.dumps({"apikey": api_key, **fields}),
                           content_type="application/json")

    assert post("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.50}]).status_code == 200
    body = {"strategy": "x", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
            "product": "CNC", "quantity": 1, "pricetype": "LIMIT", "price": 0, "triggerprice_tg": 9.61}
    trigger_id = post("placegtt", **body).get_json()["trigger_id"]
    assert post("modifygtt", **{**body, "quantity": 2, "triggerprice_tg": 9.70}, trigger_id=trigger_id).status_code == 200
    assert post("cancelgtt", trigger_id=trigger_id).status_code == 200
    events = post("gttorderstatus", trigger_id=trigger_id).get_json()["data"]["events"]
    assert [(e["event"], e["deliveries"]) for e in events] == [("modified", []), ("cancelled", [])]
    assert events[0]["message"].startswith(f"GTT modified: BUY 2 IDEA (NSE) above 9.70 — {trigger_id}")
