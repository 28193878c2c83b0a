"""`expires_at` on place (issue 26): read as an ISO date or date-time, IST without a zone; in the
past or more than a year ahead is a 400; the book shows it; and when it comes, the watcher's lease
holder cancels the GTT at the broker: status `expired`, with an "expired" event. The clock is the
gateway's injected one, moved past the expiry: nothing sleeps through it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from openalgo_gtt.domain.clock import IST
from tests.waiting import until

SINGLE = {"strategy": "tv", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
          "product": "CNC", "quantity": 10, "price": 9.61, "triggerprice_tg": 9.61}
OCO = {"trigger_type": "OCO", "exchange": "NSE", "symbol": "IDEA", "action": "SELL", "product": "CNC",
       "quantity": 10, "triggerprice_sl": 9.0, "stoploss": 8.95, "triggerprice_tg": 10.2, "target": 10.25}


def ist(moment) -> str:
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


def entry(api, trigger_id, status="all"):
    return next(e for e in api("gttorderbook", status=status).get_json()["data"] if e["trigger_id"] == trigger_id)


def test_expires_at_is_read_as_ist_and_shown_in_the_book(api, gateway):
    now = gateway.clock.now()
    local = (now + timedelta(days=2)).astimezone(IST).replace(microsecond=0)
    cases = [(local.strftime("%Y-%m-%dT%H:%M:%S"), ist(local)),  # no zone: IST
             (local.strftime("%Y-%m-%d"), local.strftime("%Y-%m-%d") + " 23:59:59")]  # a date: through that day
    for given, shown in cases:
        placed = api("placegttorder", **SINGLE, expires_at=given)
        assert placed.status_code == 200, placed.get_json()
        trigger_id = placed.get_json()["trigger_id"]
        assert entry(api, trigger_id, "active")["expires_at"] == shown
        assert api("gttorderstatus", trigger_id=trigger_id).get_json()["data"]["expires_at"] == shown
    utc_text = (local - timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S") + "Z"  # the same moment
    placed = api("placegttorder", **SINGLE, expires_at=utc_text).get_json()["trigger_id"]
    assert entry(api, placed)["expires_at"] == ist(local)


@pytest.mark.parametrize("when,words", [
    (timedelta(minutes=-1), "is not in the future"),
    (timedelta(days=366), "is more than a year ahead"),
])
def test_an_expiry_in_the_past_or_beyond_a_year_is_a_400(api, gateway, when, words):
    answer = api("placegttorder", **SINGLE, expires_at=ist(gateway.clock.now() + when))
    assert answer.status_code == 400 and words in answer.get_json()["message"]
    assert gateway.orders.list() == []


@pytest.mark.parametrize("value", ["tomorrow", "31/12/2026", "2026-13-01", 20261231, True])
def test_an_expiry_that_names_no_time_is_a_400_naming_the_field(api, value):
    answer = api("placegttorder", **SINGLE, expires_at=value)
    assert answer.status_code == 400
    assert answer.get_json()["errors"][0]["field"] == "expires_at"


def test_a_modify_keeps_the_expiry_and_says_so_when_sent_one(api, gateway):
    expiry = ist(gateway.clock.now() + timedelta(hours=1))
    placed = api("placegttorder", **SINGLE, expires_at=expiry)
    trigger_id = placed.get_json()["trigger_id"]
    body = {**SINGLE, "trigger_id": trigger_id, "triggerprice_tg": 9.7, "price": 9.7}
    refused = api("modifygttorder", **body, expires_at=ist(gateway.clock.now() + timedelta(hours=2)))
    assert refused.status_code == 400 and "cancel and place again" in refused.get_json()["message"]
    assert api("modifygttorder", **body).status_code == 200
    assert entry(api, trigger_id)["expires_at"] == expiry


def test_at_its_expiry_the_watcher_cancels_it_at_the_broker_and_it_is_expired(api, gateway):
    due = gateway.clock.now() + timedelta(minutes=10)
    single = api("placegttorder", **SINGLE, expires_at=ist(due)).get_json()["trigger_id"]
    pair = api("placegttorder", **OCO, expires_at=ist(due)).get_json()["trigger_id"]
    later = api("placegttorder", **SINGLE, expires_at=ist(due + timedelta(days=1))).get_json()["trigger_id"]
    assert gateway.watcher.expire() == []  # not yet

    gateway.clock.advance(11 * 60)
    gateway.start_watching()  # the lease holder's loop, as a server runs it
    until(lambda: gateway.orders.get(single).status == "expired" and gateway.orders.get(pair).status == "expired",
          "the watcher to expire both")
    for trigger_id in (single, pair):
        shown = entry(api, trigger_id)
        assert shown["status"] == "expired" and "expires_at" in shown["message"]
        recorded = gateway.orders.get(trigger_id)
        assert all(gateway.broker.get_gtt(b).cancelled for b in recorded.broker_ids)  # cancelled at the broker
        events = api("gttorderstatus", trigger_id=trigger_id).get_json()["data"]["events"]
        assert [e["event"] for e in events][-1] == "expired"
        refused = api("cancelgttorder", trigger_id=trigger_id)
        assert refused.status_code == 400 and "expired" in refused.get_json()["message"]
    assert [e["trigger_id"] for e in api("gttorderbook").get_json()["data"]] == [later]
    assert gateway.orders.get(later).status == "active"


def test_a_gtt_that_fired_before_its_expiry_is_triggered_not_expired(api, gateway):
    trigger_id = api("placegttorder", **SINGLE, expires_at=ist(gateway.clock.now() + timedelta(minutes=5)))\
        .get_json()["trigger_id"]
    assert api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.62}]).status_code == 200
    gateway.clock.advance(6 * 60)
    assert gateway.watcher.expire() == []
    assert gateway.orders.get(trigger_id).status == "triggered"


def test_the_book_shows_whichever_expiry_ends_the_gtt_first(api, gateway):
    """The broker's own expiry stays the outer bound: an intraday GTT ends with the day, however
    far off the caller's expires_at is."""
    later = ist(gateway.clock.now() + timedelta(days=30))
    trigger_id = api("placegttorder", **{**SINGLE, "product": "MIS"}, expires_at=later).get_json()["trigger_id"]
    broker_expiry = gateway.broker.get_gtt(trigger_id).expires_at
    assert broker_expiry is not None and ist(broker_expiry) < later
    assert entry(api, trigger_id)["expires_at"] == ist(broker_expiry)


def test_a_bracket_whose_entry_filled_keeps_its_exits_past_the_expiry(api, gateway):
    """The expiry is for an order that never filled: once the entry has, the target and stop-loss
    protect a position, and cancelling them would leave it bare."""
    bracket = {"trigger_type": "BRACKET", "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "product": "CNC",
               "quantity": 10, "entry_mode": "manual", "entry_value": 9.6}
    trigger_id = api("placegttorder", **bracket, expires_at=ist(gateway.clock.now() + timedelta(minutes=5)))\
        .get_json()["trigger_id"]
    assert api("sandbox/ticks", ticks=[{"symbol": "IDEA", "exchange": "NSE", "ltp": 9.61}]).status_code == 200
    gateway.clock.advance(6 * 60)
    assert gateway.watcher.expire() == [] and gateway.watcher.expire() == []
    assert gateway.orders.get(trigger_id).status != "expired"
    assert gateway.broker.get_gtt(trigger_id).can_fire  # the exits are still live
    assert gateway.orders.get(trigger_id).expires_at is None  # the expiry no longer applies
