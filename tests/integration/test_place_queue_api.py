"""The queue of a burst's places through the API: the 202 and its request_id, gttorderstatus by
request_id, health, the page's header, and the callers who want the old 429."""
from __future__ import annotations

import json

import pytest

from tests.integration.test_page_sessions import sign_in

PLACE = {"symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": 1, "trigger_type": "SINGLE",
         "triggerprice_tg": 9.61}


@pytest.fixture
def burst(upstox_gateway, monkeypatch):
    """Every send slot within a caller's patience is taken (the lease holder's queue still sends)."""
    hold = upstox_gateway.broker.hold_order_slots
    monkeypatch.setattr(upstox_gateway.broker, "hold_order_slots",
                        lambda calls, within: None if within is not None else hold(calls, within))


def test_a_queued_place_is_answered_202_and_told_where_it_stands_until_placed(
        upstox_client, upstox_key, upstox_gateway, fake_upstox, burst):
    queued = upstox_client.post("/api/v1/placegtt", data=json.dumps({"apikey": upstox_key, **PLACE}),
                                content_type="text/plain")
    body = queued.get_json()
    assert queued.status_code == 202 and body["status"] == "queued" and body["position"] == 1
    assert not fake_upstox.calls_to("gtt.place")
    status = upstox_client.post("/api/v1/gttorderstatus", json={"apikey": upstox_key,
                                                                "request_id": body["request_id"]}).get_json()
    assert status["data"]["status"] == "queued" and status["data"]["position"] == 1
    assert upstox_client.get("/api/health").get_json()["queue"]["length"] == 1
    sign_in(upstox_client, upstox_key)
    header = upstox_client.get("/ui/header").text
    assert "1 waiting" in header and "IDEA" in header  # the page lists it, in sending order

    assert upstox_gateway.place.queue.dispatch_next(wait_for_send=True)
    (gtt,) = fake_upstox.gtts()
    status = upstox_client.post("/api/v1/gttorderstatus", json={"apikey": upstox_key,
                                                                "request_id": body["request_id"]}).get_json()
    assert status["data"]["trigger_id"] == gtt["gtt_order_id"]
    health = upstox_client.get("/api/health").get_json()["queue"]
    assert health["length"] == 0 and health["sent_last_minute"] == 1


@pytest.mark.parametrize("opt_out", ["body", "header"])
def test_a_caller_who_wants_the_outcome_now_gets_429_not_a_queue(upstox_client, upstox_key, fake_upstox, burst,
                                                                  opt_out):
    body = {"apikey": upstox_key, **PLACE, **({"queue": False} if opt_out == "body" else {})}
    headers = {"Prefer": "respond-sync"} if opt_out == "header" else {}
    refused = upstox_client.post("/api/v1/placegtt", json=body, headers=headers)
    assert refused.status_code == 429 and "queue" in refused.get_json()["message"]
    assert not fake_upstox.calls_to("gtt.place")


def test_gttorderstatus_needs_one_of_trigger_id_or_request_id(upstox_client, upstox_key):
    both = upstox_client.post("/api/v1/gttorderstatus", json={"apikey": upstox_key, "trigger_id": "GTT-1",
                                                              "request_id": "r"})
    neither = upstox_client.post("/api/v1/gttorderstatus", json={"apikey": upstox_key})
    unknown = upstox_client.post("/api/v1/gttorderstatus", json={"apikey": upstox_key, "request_id": "no-such"})
    assert both.status_code == 400 and neither.status_code == 400 and unknown.status_code == 404


def test_a_tradingview_body_waits_at_most_its_patience(settings):
    import dataclasses

    assert settings.patience(text_plain=True) == min(2.5, settings.broker_timeout)
    assert settings.patience(text_plain=False) == settings.broker_timeout
    assert dataclasses.replace(settings, caller_patience_seconds=1.0).patience(text_plain=False) == 1.0
