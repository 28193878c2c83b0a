"""The fake Kite checked with Zerodha's official `kiteconnect` client: every route it fakes must
work from the real client (session, ltp, ohlc, instruments, GTT place/list/get/modify/delete,
and the client's exception classes for Kite's error types)."""
from __future__ import annotations

import pytest
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kex

from tests.fakes.fake_kite import FakeKite


@pytest.fixture
def fake():
    with FakeKite() as kite:
        kite.set_price("NSE:INFY", 1550, open=1540)
        kite.set_price("NFO:NIFTY26DEC24500CE", 210.5)
        yield kite


@pytest.fixture
def kite(fake):
    client = KiteConnect(api_key=fake.api_key, access_token=fake.access_token, root=fake.url)
    client.set_access_token(fake.access_token)
    return client


def test_session_exchange_with_the_checksum(fake):
    client = KiteConnect(api_key=fake.api_key, root=fake.url)
    request_token = fake.issue_request_token("AB1234")
    session = client.generate_session(request_token, api_secret=fake.api_secret)
    assert session["user_id"] == "AB1234" and session["access_token"]
    # The fresh token works; the used request token does not work twice.
    assert "NSE:INFY" in client.ltp("NSE:INFY")
    with pytest.raises(kex.TokenException):
        KiteConnect(api_key=fake.api_key, root=fake.url).generate_session(request_token, api_secret=fake.api_secret)
    with pytest.raises(kex.TokenException):
        KiteConnect(api_key=fake.api_key, root=fake.url).generate_session(fake.issue_request_token(), "wrong")


def test_quotes_and_instruments(kite):
    ltp = kite.ltp("NSE:INFY", "NFO:NIFTY26DEC24500CE")
    assert ltp["NSE:INFY"]["last_price"] == 1550 and ltp["NFO:NIFTY26DEC24500CE"]["instrument_token"] == 12345601
    ohlc = kite.ohlc("NSE:INFY")
    assert ohlc["NSE:INFY"]["ohlc"]["open"] == 1540
    rows = kite.instruments()
    weekly = next(r for r in rows if r["tradingsymbol"] == "NIFTY26D2224000CE")
    assert weekly["lot_size"] == 75 and str(weekly["expiry"]) == "2026-12-22" and weekly["strike"] == 24000
    assert {r["exchange"] for r in kite.instruments("NFO")} == {"NFO"}


def test_gtt_place_list_get_modify_delete(kite, fake):
    order = {"transaction_type": "BUY", "quantity": 1, "order_type": "LIMIT", "product": "CNC", "price": 1600.5}
    placed = kite.place_gtt(kite.GTT_TYPE_SINGLE, "INFY", "NSE", [1600], 1550, [order])
    trigger_id = placed["trigger_id"]
    assert [g["id"] for g in kite.get_gtts()] == [trigger_id]
    got = kite.get_gtt(trigger_id)
    assert got["status"] == "active" and got["condition"]["trigger_values"] == [1600]
    assert got["orders"][0]["price"] == 1600.5 and got["orders"][0]["result"] is None

    sell = [{"transaction_type": "SELL", "quantity": 1, "order_type": "LIMIT", "product": "CNC", "price": p}
            for p in (1499, 1651)]
    kite.modify_gtt(trigger_id, kite.GTT_TYPE_OCO, "INFY", "NSE", [1500, 1650], 1550, sell)
    assert fake.gtt(trigger_id)["type"] == "two-leg" and fake.gtt(trigger_id)["condition"]["trigger_values"] == [1500, 1650]

    kite.delete_gtt(trigger_id)
    assert kite.get_gtt(trigger_id)["status"] == "deleted"


def test_exception_classes(kite, fake):
    order = {"transaction_type": "BUY", "quantity": 1, "order_type": "LIMIT", "product": "MIS", "price": 1600}
    with pytest.raises(kex.InputException):
        kite.place_gtt(kite.GTT_TYPE_SINGLE, "INFY", "NSE", [1600], 1550, [order])
    with pytest.raises(kex.InputException):
        kite.get_gtt(999)
    with pytest.raises(kex.TokenException):
        KiteConnect(api_key=fake.api_key, access_token="stale", root=fake.url).get_gtts()
    fake.inject("GET /gtt/triggers", "429")
    with pytest.raises(kex.NetworkException):
        kite.get_gtts()
    fake.inject("GET /gtt/triggers", "general")
    with pytest.raises(kex.GeneralException):
        kite.get_gtts()
    with pytest.raises(kex.DataException):  # not JSON, not CSV: the client refuses it as Kite's would be
        fake.inject("GET /gtt/triggers", "html")
        kite.get_gtts()


def test_fired_gtt_shows_its_order_result_and_history(kite, fake):
    order = {"transaction_type": "BUY", "quantity": 1, "order_type": "LIMIT", "product": "CNC", "price": 1600}
    trigger_id = kite.place_gtt(kite.GTT_TYPE_SINGLE, "INFY", "NSE", [1600], 1550, [order])["trigger_id"]
    order_id = fake.fire(trigger_id)
    result = kite.get_gtt(trigger_id)["orders"][0]["result"]["order_result"]
    assert result["order_id"] == order_id and kite.get_gtt(trigger_id)["status"] == "triggered"
    assert kite.order_history(order_id)[-1]["status"] == "COMPLETE"
