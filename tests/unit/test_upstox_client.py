"""UpstoxBroker against mocked HTTP (`responses`): request shapes, error mapping, retries,
quote mapping and parsing. The same client against a real socket server is in
tests/integration/test_upstox_fake_server.py."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import unquote

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.exceptions import MaxRetryError, NewConnectionError

from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, ENTRY, IMMEDIATE, MULTIPLE, SINGLE, STOPLOSS, TARGET, GttRequest, GttRule,
    Quote,
)
from openalgo_gtt.brokers.errors import (
    BrokerFailure, BrokerTimeout, BrokerUnreachable, InputRejected, PacingTimeout, RateLimited,
    TokenRejected, UnreadableAnswer,
)
from openalgo_gtt.brokers.pacing import OrderPacer
from openalgo_gtt.brokers.upstox import UpstoxBroker

BASE = "https://upstox.test"
TOKEN = "secret-token-123"
PLACE = f"{BASE}/v3/order/gtt/place"
MODIFY = f"{BASE}/v3/order/gtt/modify"
CANCEL = f"{BASE}/v3/order/gtt/cancel"
DETAILS = f"{BASE}/v3/order/gtt"
OHLC = f"{BASE}/v3/market-quote/ohlc"
IDEA = "NSE_EQ|INE669E01016"
OK_IDS = {"status": "success", "data": {"gtt_order_ids": ["GTT-C25090600141213"]}, "metadata": {"latency": 7}}


def envelope(code, message, spelling="both"):
    error = {"message": message, "propertyPath": None, "invalidValue": None}
    if spelling in ("both", "camel"):
        error["errorCode"] = code
    if spelling in ("both", "snake"):
        error["error_code"] = code
    return {"status": "error", "errors": [error]}


def single(price="9.55"):
    return GttRequest(SINGLE, IDEA, BUY, "D", 10, (GttRule(ENTRY, ABOVE, Decimal(price)),))


def multiple():
    return GttRequest(MULTIPLE, IDEA, BUY, "I", 3, (
        GttRule(ENTRY, BELOW, Decimal("7.30")),
        GttRule(TARGET, IMMEDIATE, Decimal("7.64")),
        GttRule(STOPLOSS, IMMEDIATE, Decimal("7.1"), trailing_gap=Decimal("0.10"), market_protection=5),
    ))


@pytest.fixture
def calls():
    return []


@pytest.fixture
def broker(calls):
    return UpstoxBroker(BASE, TOKEN, timeout=0.5, pacer=None, observer=calls.append, retry_backoff=0)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def sent_json(mocked, index=-1):
    return json.loads(mocked.calls[index].request.body)


# ----- request shapes ---------------------------------------------------------------------------


def test_place_single_sends_the_documented_body_and_headers(broker, mocked):
    mocked.post(PLACE, json=OK_IDS)
    assert broker.place_gtt(single()) == "GTT-C25090600141213"
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert sent_json(mocked) == {
        "type": "SINGLE", "quantity": 10, "product": "D", "instrument_token": IDEA,
        "transaction_type": "BUY",
        "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": 9.55}],
    }
    assert b'"trigger_price": 9.55}' in request.body  # the wire text, not 9.5500000001


def test_place_multiple_with_trailing_gap_and_market_protection(broker, mocked):
    mocked.post(PLACE, json=OK_IDS)
    broker.place_gtt(multiple())
    assert sent_json(mocked)["rules"] == [
        {"strategy": "ENTRY", "trigger_type": "BELOW", "trigger_price": 7.3},
        {"strategy": "TARGET", "trigger_type": "IMMEDIATE", "trigger_price": 7.64},
        {"strategy": "STOPLOSS", "trigger_type": "IMMEDIATE", "trigger_price": 7.1,
         "trailing_gap": 0.1, "market_protection": 5},
    ]


def test_modify_sends_id_type_quantity_and_rules_only(broker, mocked):
    mocked.put(MODIFY, json=OK_IDS)
    assert broker.modify_gtt("GTT-C25090600141213", single("8")) == "GTT-C25090600141213"
    assert sent_json(mocked) == {
        "type": "SINGLE", "quantity": 10, "gtt_order_id": "GTT-C25090600141213",
        "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": 8.0}],
    }


def test_cancel_is_a_delete_with_a_json_body(broker, mocked):
    mocked.delete(CANCEL, json=OK_IDS)
    assert broker.cancel_gtt("GTT-C25090600141213") == "GTT-C25090600141213"
    assert mocked.calls[0].request.method == "DELETE"
    assert sent_json(mocked) == {"gtt_order_id": "GTT-C25090600141213"}


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=Decimal("0.05"), max_value=Decimal("9999999.95"), places=2))
def test_any_two_decimal_price_reads_back_exactly_from_the_wire(price):
    with responses.RequestsMock() as mocked:
        mocked.post(PLACE, json=OK_IDS)
        UpstoxBroker(BASE, TOKEN, timeout=0.5, pacer=None).place_gtt(single(str(price)))
        body = json.loads(mocked.calls[0].request.body, parse_float=Decimal)
    assert body["rules"][0]["trigger_price"] == price


def test_token_callable_is_asked_on_every_call(mocked):
    tokens = iter(["first", "second"])
    broker = UpstoxBroker(BASE, lambda: next(tokens), timeout=0.5, pacer=None)
    mocked.post(PLACE, json=OK_IDS)
    broker.place_gtt(single())
    broker.place_gtt(single())
    assert [c.request.headers["Authorization"] for c in mocked.calls] == ["Bearer first", "Bearer second"]


# ----- GTT details ------------------------------------------------------------------------------

DETAIL = {
    "type": "MULTIPLE", "exchange": "NSE_EQ", "quantity": 1, "product": "D",
    "rules": [
        {"strategy": "ENTRY", "status": "SCHEDULED", "message": None, "trigger_type": "ABOVE",
         "trigger_price": 100.05, "transaction_type": "BUY", "order_id": None},
        {"strategy": "STOPLOSS", "status": "FAILED", "message": "circuit limit", "trigger_type": "IMMEDIATE",
         "trigger_price": 95.1, "transaction_type": "SELL", "order_id": "250906000123", "trailing_gap": 0.5},
    ],
    "trading_symbol": "IDEA", "instrument_token": IDEA, "gtt_order_id": "GTT-C25090600141213",
    "expires_at": 1781029799000000, "created_at": 1749466010123456,
}


def test_get_gtt_parses_microsecond_timestamps_and_decimal_prices(broker, mocked):
    mocked.get(DETAILS, json={"status": "success", "data": [DETAIL], "metadata": {"latency": 24}})
    gtt = broker.get_gtt("GTT-C25090600141213")
    assert mocked.calls[0].request.url == f"{DETAILS}?gtt_order_id=GTT-C25090600141213"
    assert gtt.gtt_id == "GTT-C25090600141213" and gtt.segment == "NSE_EQ" and gtt.trading_symbol == "IDEA"
    assert gtt.created_at == datetime(2025, 6, 9, 10, 46, 50, 123456, tzinfo=timezone.utc)
    assert gtt.expires_at == datetime(2026, 6, 9, 18, 29, 59, tzinfo=timezone.utc)  # 23:59:59 IST
    entry, stoploss = gtt.rules
    assert entry.trigger_price == Decimal("100.05") and entry.status == "SCHEDULED"
    assert stoploss.trailing_gap == Decimal("0.5") and stoploss.message == "circuit limit"
    assert stoploss.order_id == "250906000123" and entry.trailing_gap is None


def test_get_gtt_returns_none_for_empty_data(broker, mocked):
    mocked.get(DETAILS, json={"status": "success", "data": []})
    assert broker.get_gtt("GTT-C1") is None


def test_list_gtts_asks_without_a_query(broker, mocked):
    mocked.get(DETAILS, json={"status": "success", "data": [DETAIL, dict(DETAIL, gtt_order_id="GTT-C2")]})
    assert [g.gtt_id for g in broker.list_gtts()] == ["GTT-C25090600141213", "GTT-C2"]
    assert mocked.calls[0].request.url == DETAILS


@pytest.mark.parametrize("data", [
    {"not": "a list"},
    [dict(DETAIL, rules=[{"strategy": "ENTRY"}])],  # rule without status and price
    [dict(DETAIL, quantity="many")],
    [dict(DETAIL, created_at="yesterday")],
    [{k: v for k, v in DETAIL.items() if k != "gtt_order_id"}],
])
def test_malformed_details_become_unreadable_answer(broker, mocked, data):
    mocked.get(DETAILS, json={"status": "success", "data": data})
    with pytest.raises(UnreadableAnswer) as caught:
        broker.list_gtts()
    assert caught.value.may_have_reached is False


# ----- error mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize("status,body,error,code,reached", [
    (401, envelope("UDAPI100050", "Invalid token used to access API"), TokenRejected, "UDAPI100050", False),
    (401, "<html>Unauthorized</html>", TokenRejected, None, False),
    (400, envelope("UDAPI100050", "Invalid token", "snake"), TokenRejected, "UDAPI100050", False),
    (400, envelope("UDAPI1130", "Trigger price too far", "camel"), InputRejected, "UDAPI1130", False),
    (400, envelope("UDAPI1130", "Trigger price too far", "snake"), InputRejected, "UDAPI1130", False),
    (403, envelope("UDAPI1154", "Static IP mismatch"), InputRejected, "UDAPI1154", False),
    (403, "<html>Forbidden</html>", InputRejected, None, False),
    (429, envelope("UDAPI10005", "Too Many Request Sent"), RateLimited, "UDAPI10005", False),
    (500, envelope("UDAPI100500", "Something went wrong"), BrokerFailure, "UDAPI100500", True),
    (502, "<html><body>502 Bad Gateway</body></html>", BrokerFailure, None, True),
    (200, "<html><body>maintenance</body></html>", UnreadableAnswer, None, True),
    (200, "", UnreadableAnswer, None, True),
    (200, '{"status": "success", "data": {"gtt_order_ids": ["GTT-', UnreadableAnswer, None, True),
    (200, '["GTT-C1"]', UnreadableAnswer, None, True),
    (200, '{"status": "success", "data": {}}', UnreadableAnswer, None, True),
    (200, '{"status": "success", "data": {"gtt_order_ids": []}}', UnreadableAnswer, None, True),
    (200, '{"status": "success"}', UnreadableAnswer, None, True),
    (200, '{"status": "partial"}', UnreadableAnswer, None, True),
    (200, envelope("UDAPI1140", "refused"), InputRejected, "UDAPI1140", False),
    (302, "", UnreadableAnswer, None, True),
])
def test_every_answer_maps_to_a_typed_error(broker, mocked, calls, status, body, error, code, reached):
    body = json.dumps(body) if isinstance(body, dict) else body
    mocked.post(PLACE, body=body, status=status)
    with pytest.raises(error) as caught:
        broker.place_gtt(single())
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.http_status == status
    assert caught.value.may_have_reached is reached
    assert calls[-1].status == status and calls[-1].error.startswith(error.__name__)


def test_input_rejected_keeps_upstox_message(broker, mocked):
    mocked.post(PLACE, json=envelope("UDAPI1130", "Trigger price too far"), status=400)
    with pytest.raises(InputRejected) as caught:
        broker.place_gtt(single())
    assert caught.value.message == "Trigger price too far" and str(caught.value) == "Trigger price too far"


@pytest.mark.parametrize("exc,error,write_reached", [
    (requests.ConnectTimeout("connect timed out"), BrokerTimeout, False),
    (requests.ReadTimeout("read timed out"), BrokerTimeout, True),
    (requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused"))), BrokerUnreachable, False),
    (requests.ConnectionError("Connection aborted: RemoteDisconnected"), BrokerUnreachable, True),
])
def test_transport_failures(mocked, calls, exc, error, write_reached):
    broker = UpstoxBroker(BASE, TOKEN, timeout=0.5, pacer=None, observer=calls.append, read_retries=0)
    mocked.post(PLACE, body=exc)
    mocked.get(DETAILS, body=exc)
    with pytest.raises(error) as on_write:
        broker.place_gtt(single())
    assert on_write.value.may_have_reached is write_reached
    with pytest.raises(error) as on_read:
        broker.list_gtts()
    assert on_read.value.may_have_reached is False  # a read cannot have done anything
    assert [c.status for c in calls] == [None, None]


# ----- retries ----------------------------------------------------------------------------------


def test_reads_retry_on_5xx_429_and_connection_errors_then_succeed(broker, mocked, calls):
    mocked.get(DETAILS, status=502, body="<html>bad gateway</html>")
    mocked.get(DETAILS, status=429, json=envelope("UDAPI10005", "Too Many Request Sent"))
    mocked.get(DETAILS, json={"status": "success", "data": []})
    assert broker.list_gtts() == []
    assert [c.status for c in calls] == [502, 429, 200]


def test_read_retries_are_bounded(broker, mocked, calls):
    mocked.get(DETAILS, status=500, json=envelope("UDAPI100500", "Something went wrong"))
    with pytest.raises(BrokerFailure):
        broker.list_gtts()
    assert len(mocked.calls) == 3  # one try + read_retries=2


def test_read_timeouts_are_not_retried(broker, mocked):
    mocked.get(DETAILS, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(BrokerTimeout):
        broker.list_gtts()
    assert len(mocked.calls) == 1


def test_reads_do_not_retry_client_errors(broker, mocked):
    mocked.get(DETAILS, status=400, json=envelope("UDAPI1135", "gtt_order_id must start with GTT-"))
    with pytest.raises(InputRejected):
        broker.get_gtt("bad")
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("method,url,call", [
    ("POST", PLACE, lambda b: b.place_gtt(single())),
    ("PUT", MODIFY, lambda b: b.modify_gtt("GTT-C1", single())),
    ("DELETE", CANCEL, lambda b: b.cancel_gtt("GTT-C1")),
])
@pytest.mark.parametrize("failure", [dict(status=500, body="{}"), dict(status=429, body="{}"),
                                     dict(body=requests.ConnectionError("reset"))])
def test_writes_are_never_retried(broker, mocked, method, url, call, failure):
    mocked.add(method, url, **failure)
    mocked.add(method, url, json=OK_IDS)
    with pytest.raises((BrokerFailure, RateLimited, BrokerUnreachable)):
        call(broker)
    assert len(mocked.calls) == 1


# ----- observer and pacer -----------------------------------------------------------------------


def test_observer_sees_each_attempt_without_query_or_token(broker, mocked, calls):
    mocked.get(DETAILS, json={"status": "success", "data": []})
    broker.get_gtt("GTT-C1")
    assert len(calls) == 1
    call = calls[0]
    assert (call.method, call.path, call.status, call.error) == ("GET", "/v3/order/gtt", 200, None)
    assert call.latency_ms >= 0 and TOKEN not in repr(call)


def test_a_failing_observer_does_not_break_the_call(mocked):
    def explode(call):
        raise RuntimeError("audit store down")

    broker = UpstoxBroker(BASE, TOKEN, timeout=0.5, pacer=None, observer=explode)
    mocked.post(PLACE, json=OK_IDS)
    assert broker.place_gtt(single()) == "GTT-C25090600141213"


def test_the_token_never_appears_in_errors(broker, mocked):
    mocked.post(PLACE, status=401, body="")
    with pytest.raises(TokenRejected) as caught:
        broker.place_gtt(single())
    assert TOKEN not in repr(caught.value) and TOKEN not in str(caught.value)


class CountingPacer:
    def __init__(self):
        self.timeouts = []

    def acquire(self, timeout=None):
        self.timeouts.append(timeout)
        return 0.0


def test_only_order_calls_go_through_the_pacer(mocked):
    pacer = CountingPacer()
    broker = UpstoxBroker(BASE, TOKEN, timeout=0.5, pacer=pacer, pace_timeout=3.0)
    mocked.post(PLACE, json=OK_IDS)
    mocked.put(MODIFY, json=OK_IDS)
    mocked.delete(CANCEL, json=OK_IDS)
    mocked.get(DETAILS, json={"status": "success", "data": []})
    mocked.get(OHLC, json={"status": "success", "data": {}})
    broker.place_gtt(single())
    broker.modify_gtt("GTT-C1", single())
    broker.cancel_gtt("GTT-C1")
    broker.list_gtts()
    broker.quotes([IDEA])
    assert pacer.timeouts == [3.0, 3.0, 3.0]


def test_a_full_pacer_refuses_without_sending(mocked):
    broker = UpstoxBroker(BASE, TOKEN, timeout=0.5, pacer=OrderPacer("2/minute"), pace_timeout=0.05)
    mocked.post(PLACE, json=OK_IDS)
    broker.place_gtt(single())
    broker.place_gtt(single())
    with pytest.raises(PacingTimeout) as caught:
        broker.place_gtt(single())
    assert isinstance(caught.value, RateLimited) and caught.value.may_have_reached is False
    assert len(mocked.calls) == 2


# ----- quotes -----------------------------------------------------------------------------------


def ohlc_item(key, last, day_open):
    live = {"open": day_open, "high": last, "low": last, "close": last, "volume": 10, "ts": 1}
    return {"last_price": last, "instrument_token": key, "prev_ohlc": dict(live, open=1), "live_ohlc": live}


def test_quotes_map_back_through_instrument_token(broker, mocked):
    nifty, reliance = "NSE_INDEX|Nifty 50", "NSE_EQ|INE002A01018"
    mocked.get(OHLC, json={"status": "success", "data": {
        "NSE_EQ:IDEA": ohlc_item(IDEA, 9.55, 9.4),
        "NSE_INDEX:Nifty 50": ohlc_item(nifty, 22000.05, 0),  # before the open: 0
        "NSE_EQ:RELIANCE": {"last_price": 2900.1, "instrument_token": reliance},  # no live_ohlc
        "NSE_EQ:OTHER": ohlc_item("NSE_EQ|NOT-ASKED", 1, 1),
    }})
    quotes = broker.quotes([IDEA, nifty, reliance, "NSE_EQ|MISSING"])
    assert quotes == {
        IDEA: Quote(IDEA, Decimal("9.55"), Decimal("9.4")),
        nifty: Quote(nifty, Decimal("22000.05"), None),
        reliance: Quote(reliance, Decimal("2900.1"), None),
    }
    url = mocked.calls[0].request.url
    assert url == (f"{OHLC}?instrument_key=NSE_EQ%7CINE669E01016,NSE_INDEX%7CNifty%2050,"
                   "NSE_EQ%7CINE002A01018,NSE_EQ%7CMISSING&interval=1d")


def test_quotes_are_batched_at_500_keys(broker, mocked):
    keys = [f"NSE_FO|{n}" for n in range(1203)]
    mocked.get(OHLC, json={"status": "success", "data": {"NSE_FO:X": ohlc_item("NSE_FO|7", 5, 4)}})
    quotes = broker.quotes(keys + keys[:10])  # duplicates are asked once
    sent = [unquote(c.request.url.split("instrument_key=")[1].split("&")[0]).split(",") for c in mocked.calls]
    assert [len(batch) for batch in sent] == [500, 500, 203]
    assert [key for batch in sent for key in batch] == keys
    assert list(quotes) == ["NSE_FO|7"]


def test_quote_answer_without_data_object_is_unreadable(broker, mocked):
    mocked.get(OHLC, json={"status": "success", "data": [1, 2]})
    with pytest.raises(UnreadableAnswer):
        broker.quotes([IDEA])


def test_quotes_of_nothing_make_no_call(broker, mocked):
    assert broker.quotes([]) == {}
    assert len(mocked.calls) == 0
