"""Kite Connect v3: the routes table and the `Broker` adapter (GTTs, quotes, an order's fate),
on the shared transport (brokers/http.py). The wire shapes are in kite_wire.py.

Every call sends `X-Kite-Version: 3` and `Authorization: token <api_key>:<access_token>`.
Kite's limits are 10 requests a second for GTT and order calls and 1 a second for quotes, so
each has its own `OrderPacer` (the same pacer as Upstox's, configured per broker). A single
GTT needs the instrument's `last_price`, which Kite requires, so a place first reads `/quote/ltp`
(kept for a second: a burst of places on one instrument costs one quote).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import requests
from requests.auth import AuthBase

from openalgo_gtt.brokers import deadline
from openalgo_gtt.brokers.base import BrokerCallObserver
from openalgo_gtt.brokers.errors import BrokerFailure, BrokerUnreachable, InputRejected, PacingTimeout, RateLimited
from openalgo_gtt.brokers.http import BrokerHttp
from openalgo_gtt.brokers.kite_wire import (
    batches,
    gtt_form,
    instruments_query,
    interpret,
    parse_gtts,
    parse_one_gtt,
    parse_quotes,
    order_fill as parse_order_fill,
    single_order_fill,
    trigger_id,
)
from openalgo_gtt.brokers.pacing import OrderPacer, SlotHold, unpaced
from openalgo_gtt.domain.model import BrokerFeatures, BrokerGtt, GttRequest, OrderFill, Quote

ROUTES: dict[str, tuple[str, str]] = {
    "gtt.place": ("POST", "/gtt/triggers"),
    "gtt.list": ("GET", "/gtt/triggers"),  # active GTTs and the last 7 days of the others
    "gtt.info": ("GET", "/gtt/triggers/{trigger_id}"),
    "gtt.modify": ("PUT", "/gtt/triggers/{trigger_id}"),  # a full replacement
    "gtt.delete": ("DELETE", "/gtt/triggers/{trigger_id}"),
    "order.info": ("GET", "/orders/{order_id}"),  # the order's history, latest last
    "quote.ltp": ("GET", "/quote/ltp"),  # ?i=EXCHANGE:TRADINGSYMBOL&i=...
    "quote.ohlc": ("GET", "/quote/ohlc"),
    # The login: no access token yet. The login page is opened by the browser, never called.
    "session.token": ("POST", "/session/token"),
}
QUOTE_ROUTES = frozenset({"quote.ltp", "quote.ohlc"})

KITE_FEATURES = BrokerFeatures(
    name="Kite",
    products=(("CNC", "CNC"), ("NRML", "NRML")),  # Kite's GTTs take no MIS
    limit_price=True,
    native_oco=True,
    native_bracket=False,
    trailing_stop=False,
)
LTP_MAX_AGE = 1.0  # seconds a last price is reused for a place's `last_price`
RATE_RETRY_PAUSE = 0.4  # a 429 on a write: nothing was done, so one more try after this

T = TypeVar("T")


class KiteHttp(BrokerHttp):
    label = "Kite"
    routes = ROUTES
    interpret = staticmethod(interpret)


class KiteAuth(AuthBase):
    """`Authorization: token api_key:access_token` and the API version, as a requests auth
    object (never shown in a repr)."""

    def __init__(self, api_key: str, access_token: str) -> None:
        self._value = f"token {api_key}:{access_token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._value
        request.headers["X-Kite-Version"] = "3"
        return request

    def __repr__(self) -> str:
        return "KiteAuth(***)"


class VersionOnly(AuthBase):
    """The API version header alone, for the session exchange (no token exists yet)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Kite-Version"] = "3"
        return request


class KiteBroker(KiteHttp):
    """The `Broker` protocol for Kite Connect.

    `access_token` may be a callable (the stored login, refreshed daily). Reads retry
    `read_retries` times on connection errors, 429 and 5xx; a write is retried only after a 429
    or NetworkException (Kite did nothing), once; any other failure of a write is left to the
    caller to settle (errors.may_have_reached). GTT and order calls take a slot from `pacer`,
    quotes from `quote_pacer`, waiting at most `pace_timeout` seconds.
    """

    name = "kite"
    features = KITE_FEATURES

    def __init__(self, base_url: str, api_key: str, access_token: str | Callable[[], str], *, timeout: float,
                 pacer: OrderPacer | None, quote_pacer: OrderPacer | None,
                 observer: BrokerCallObserver | None = None, read_retries: int = 2,
                 session: requests.Session | None = None, pace_timeout: float | None = 10.0,
                 retry_backoff: float = 0.25) -> None:
        super().__init__(base_url, timeout=timeout, observer=observer, session=session)
        self._api_key = api_key
        self._token = access_token if callable(access_token) else (lambda: access_token)
        self._pacer = pacer
        self._quote_pacer = quote_pacer
        self._pace_timeout = pace_timeout
        self._read_retries = max(read_retries, 0)
        self._retry_backoff = retry_backoff
        self._ltp_lock = threading.Lock()
        self._ltp: dict[str, tuple[float, Decimal]] = {}

    # ----- GTT -----------------------------------------------------------------------------

    def place_gtt(self, request: GttRequest) -> str:
        return self._request("gtt.place", parse=trigger_id, form=self._form(request))

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        form = self._form(request)
        return self._request("gtt.modify", parse=trigger_id, form=form, path_args={"trigger_id": gtt_id})

    def cancel_gtt(self, gtt_id: str) -> str:
        return self._request("gtt.delete", parse=trigger_id, path_args={"trigger_id": gtt_id})

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        try:
            return self._request("gtt.info", parse=parse_one_gtt, path_args={"trigger_id": gtt_id})
        except InputRejected:
            return None  # Kite answers an unknown trigger id with a refusal

    def list_gtts(self) -> list[BrokerGtt]:
        return self._request("gtt.list", parse=parse_gtts)

    # ----- orders and quotes ---------------------------------------------------------------

    def order_status(self, order_id: str) -> tuple[str, str | None]:
        """The latest state of an order (COMPLETE, REJECTED, CANCELLED, OPEN, ...) and Kite's
        message: how the gateway learns that a GTT's order has filled."""
        return self._request("order.info", parse=single_order_fill, path_args={"order_id": order_id})

    def hold_order_slots(self, calls: int, within: float | None) -> SlotHold | None:
        return self._pacer.hold(calls, within) if self._pacer is not None else unpaced()

    def order_fill(self, order_id: str) -> OrderFill:
        """What became of one order (a fired GTT leg's): its latest history entry."""
        return self._request("order.info", parse=parse_order_fill, path_args={"order_id": order_id})

    def quotes(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last price and today's open (`/quote/ohlc`); keys Kite does not answer for are left out."""
        result: dict[str, Quote] = {}
        for batch in batches(instrument_keys):
            result.update(self._request("quote.ohlc", query=instruments_query(batch),
                                        parse=partial(parse_quotes, asked=batch)))
        now = time.monotonic()
        with self._ltp_lock:
            self._ltp.update((key, (now, quote.last_price)) for key, quote in result.items())
        return result

    def last_prices(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last prices from `/quote/ltp` (500 keys a call); keys Kite does not answer for are left
        out. The sandbox's live prices (services/live_prices.py) read this."""
        result: dict[str, Quote] = {}
        for batch in batches(instrument_keys):
            result.update(self._request("quote.ltp", query=instruments_query(batch),
                                        parse=partial(parse_quotes, asked=batch)))
        return result

    def _form(self, request: GttRequest) -> dict[str, str]:
        """The place/modify form with the last price. A trigger on the wrong side of a price up
        to a second old is checked again against a fresh one before it is refused."""
        price, reused = self._last_price(request.instrument_key)
        try:
            return gtt_form(request, price)
        except InputRejected:
            if not reused:
                raise
            return gtt_form(request, self._last_price(request.instrument_key, fresh=True)[0])

    def _last_price(self, instrument_key: str, *, fresh: bool = False) -> tuple[Decimal, bool]:
        """(the last price Kite requires with every GTT, whether it was reused): from
        `/quote/ltp`, or a quote up to a second old unless `fresh`."""
        with self._ltp_lock:
            held = self._ltp.get(instrument_key)
        if not fresh and held is not None and time.monotonic() - held[0] < LTP_MAX_AGE:
            return held[1], True
        quotes = self._request("quote.ltp", query=instruments_query([instrument_key]),
                               parse=partial(parse_quotes, asked=[instrument_key]))
        quote = quotes.get(instrument_key)
        if quote is None:
            raise InputRejected(f"Kite has no last price for {instrument_key}", may_have_reached=False)
        with self._ltp_lock:
            self._ltp[instrument_key] = (time.monotonic(), quote.last_price)
        return quote.last_price, False

    # ----- pacing and retries --------------------------------------------------------------

    def _request(self, route: str, *, parse: Callable[[Any], T], query: str | None = None,
                 form: dict[str, str] | None = None, path_args: dict[str, str] | None = None) -> T:
        method, _path = ROUTES[route]
        is_write = method != "GET"
        token = self._token()  # an expired login fails here, before it takes a pacing slot
        pacer = self._quote_pacer if route in QUOTE_ROUTES else self._pacer
        retries_left = 1 if is_write else self._read_retries
        delay = RATE_RETRY_PAUSE if is_write else self._retry_backoff
        # An order call's slot must leave time to send it within the caller's patience (a place
        # that cannot is queued); a quote is a read, and waits as long as the budget allows.
        wait = deadline.bounded if route in QUOTE_ROUTES else deadline.pacing_wait
        pace = None if pacer is None else lambda: pacer.acquire(wait(self._pace_timeout))
        while True:
            try:
                return self._call(route, parse, query=query, form=form, path_args=path_args,
                                  auth=KiteAuth(self._api_key, token), pace=pace)
            except PacingTimeout:
                raise
            except RateLimited:
                # Nothing was done: safe to try once more, for a write as for a read.
                if retries_left <= 0 or not deadline.leaves_time_after(delay):
                    raise
            except (BrokerUnreachable, BrokerFailure):
                if is_write or retries_left <= 0 or not deadline.leaves_time_after(delay):
                    raise
            retries_left -= 1
            time.sleep(delay)
            delay *= 2
