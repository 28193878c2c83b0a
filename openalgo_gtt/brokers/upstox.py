"""Upstox's HTTP API: the routes table, the transport, and the GTT and market-quote client.

Shaped like pykiteconnect: one table of named routes (`ROUTES`, the login endpoints included),
one transport (`BrokerHttp._call`, brokers/http.py, shared with Kite) that owns the session, timeouts, the bounded body read, error
mapping and the call observer, and thin public methods on top. `UpstoxBroker` (the `Broker`
protocol: GTTs and quotes) adds the bearer token, pacing and retries; `UpstoxLoginClient`
(upstox_login.py) makes the login calls through the same table and transport. The JSON shapes
are in upstox_wire.py. Every failure reaches the caller as an `openalgo_gtt.brokers.errors`
type, never a KeyError.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from requests.auth import AuthBase

from openalgo_gtt.brokers import deadline
from openalgo_gtt.brokers.base import BrokerCallObserver
from openalgo_gtt.brokers.errors import (
    BrokerFailure,
    BrokerUnreachable,
    RateLimited,
)
from openalgo_gtt.brokers.http import MAX_BODY, POOL_SIZE, BrokerHttp  # noqa: F401 - re-exported
from openalgo_gtt.brokers.pacing import OrderPacer, Slot, SlotHold, unpaced
from openalgo_gtt.brokers.upstox_wire import (
    batches,
    first_gtt_id,
    interpret,
    keys_query,
    parse_gtts,
    parse_ltp,
    parse_order_fill,
    parse_ohlc,
    rule_json,
)
from openalgo_gtt.domain.model import UPSTOX_FEATURES, BrokerGtt, GttRequest, OrderFill, Quote

log = logging.getLogger(__name__)

ROUTES: dict[str, tuple[str, str]] = {
    "gtt.place": ("POST", "/v3/order/gtt/place"),
    "gtt.modify": ("PUT", "/v3/order/gtt/modify"),
    "gtt.cancel": ("DELETE", "/v3/order/gtt/cancel"),  # a DELETE with a JSON body
    "gtt.details": ("GET", "/v3/order/gtt"),  # ?gtt_order_id=...; without it: every GTT
    "quote.ohlc": ("GET", "/v3/market-quote/ohlc"),  # ?instrument_key=...&interval=1d
    "quote.ltp": ("GET", "/v3/market-quote/ltp"),  # ?instrument_key=K1,K2 (up to 500)
    "order.details": ("GET", "/v2/order/details"),  # ?order_id=...: a fired GTT leg's order
    # The login: no bearer token. The dialog is opened by the browser, never called.
    "login.dialog": ("GET", "/v2/login/authorization/dialog"),
    "login.token": ("POST", "/v2/login/authorization/token"),  # form-encoded
    "login.token_request": ("POST", "/v3/login/auth/token/request/{client_id}"),
}
# Paced: Upstox counts its order APIs together (an order's details among them).
ORDER_ROUTES = frozenset({"gtt.place", "gtt.modify", "gtt.cancel", "order.details"})

T = TypeVar("T")


class UpstoxHttp(BrokerHttp):
    """The transport every Upstox client shares (brokers/http.py) with Upstox's routes and
    answers."""

    label = "Upstox"
    routes = ROUTES
    interpret = staticmethod(interpret)


class UpstoxBroker(UpstoxHttp):
    """The `Broker` protocol for Upstox.

    `access_token` may be a callable so a token refreshed after 03:30 IST is picked up on the
    next call. Reads retry `read_retries` times on connection errors, 429 and 5xx, after
    `retry_backoff`, then twice that, ... seconds; writes are never re-sent (see
    errors.may_have_reached). Order calls first take a slot from `pacer`, waiting at most
    `pace_timeout` seconds (PacingTimeout after that).
    """

    name = "upstox"
    features = UPSTOX_FEATURES

    def __init__(
        self,
        base_url: str,
        access_token: str | Callable[[], str],
        *,
        timeout: float,
        pacer: OrderPacer | None,
        observer: BrokerCallObserver | None = None,
        read_retries: int = 2,
        session: requests.Session | None = None,
        pace_timeout: float | None = 10.0,
        retry_backoff: float = 0.25,
    ) -> None:
        super().__init__(base_url, timeout=timeout, observer=observer, session=session)
        self._token = access_token if callable(access_token) else (lambda: access_token)
        self._pacer = pacer
        self._pace_timeout = pace_timeout
        self._read_retries = max(read_retries, 0)
        self._retry_backoff = retry_backoff

    # ----- GTT -----------------------------------------------------------------------------

    def place_gtt(self, request: GttRequest) -> str:
        body = {
            "type": request.type,
            "quantity": request.quantity,
            "product": request.product,
            "instrument_token": request.instrument_key,
            "transaction_type": request.transaction_type,
            "rules": [rule_json(rule) for rule in request.rules],
        }
        return self._request("gtt.place", body=body, parse=first_gtt_id)

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        # Instrument, product and side cannot change on modify, so Upstox does not take them.
        body = {
            "type": request.type,
            "quantity": request.quantity,
            "rules": [rule_json(rule) for rule in request.rules],
            "gtt_order_id": gtt_id,
        }
        return self._request("gtt.modify", body=body, parse=first_gtt_id)

    def cancel_gtt(self, gtt_id: str) -> str:
        return self._request("gtt.cancel", body={"gtt_order_id": gtt_id}, parse=first_gtt_id)

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        def only_this(payload: dict) -> BrokerGtt | None:
            # `data` is a list even for one id; an empty list means Upstox does not know it.
            gtts = parse_gtts(payload)
            for gtt in gtts:
                if gtt.gtt_id == gtt_id:
                    return gtt
            if gtts:
                raise ValueError(f"asked for GTT {gtt_id}, got {[g.gtt_id for g in gtts]}")
            return None

        query = f"gtt_order_id={quote(gtt_id, safe='')}"
        return self._request("gtt.details", query=query, parse=only_this)

    def list_gtts(self) -> list[BrokerGtt]:
        return self._request("gtt.details", parse=parse_gtts)

    # ----- quotes --------------------------------------------------------------------------

    def quotes(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last price and today's open; keys Upstox does not answer for are left out."""
        result: dict[str, Quote] = {}
        for batch in batches(instrument_keys):
            query = keys_query(batch) + "&interval=1d"
            result.update(self._request("quote.ohlc", query=query, parse=partial(parse_ohlc, asked=batch)))
        return result

    def order_fill(self, order_id: str) -> OrderFill:
        """What became of one order (a fired GTT leg's): GET /v2/order/details, paced."""
        return self._request("order.details", query=f"order_id={quote(order_id, safe='')}", parse=parse_order_fill)

    def last_prices(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last prices from the v3 LTP quote (one call per 500 keys); keys Upstox does not
        answer for are left out. The sandbox's live prices (services/live_prices.py) read this."""
        result: dict[str, Quote] = {}
        for batch in batches(instrument_keys):
            result.update(self._request("quote.ltp", query=keys_query(batch), parse=partial(parse_ltp, asked=batch)))
        return result

    # ----- pacing and retries --------------------------------------------------------------

    def _pace(self) -> Slot:
        return self._pacer.acquire(deadline.pacing_wait(self._pace_timeout))

    def hold_order_slots(self, calls: int, within: float | None) -> SlotHold | None:
        return self._pacer.hold(calls, within) if self._pacer is not None else unpaced()

    def _request(self, route: str, *, parse: Callable[[dict], T], query: str | None = None,
                 body: Any = None) -> T:
        """Send one call with the bearer token and return `parse(success payload)`, or raise a
        BrokerError."""
        method, _path = ROUTES[route]
        is_write = method != "GET"
        pace = self._pace if route in ORDER_ROUTES and self._pacer is not None else None
        retries_left = 0 if is_write else self._read_retries
        delay = self._retry_backoff
        while True:
            try:
                # The token is read first: an expired login fails before it takes a pacing slot.
                return self._call(route, parse, query=query, body=body, auth=_BearerAuth(self._token()),
                                  pace=pace)
            except (BrokerUnreachable, RateLimited, BrokerFailure):
                # Only idempotent reads get here with retries left. Timeouts are not retried:
                # a server that hung once is likely to hang again, and the wait must stay bounded.
                if retries_left <= 0 or not deadline.leaves_time_after(delay):
                    raise
            retries_left -= 1
            time.sleep(delay)
            delay *= 2


# ----- transport helpers ---------------------------------------------------------------------


class _BearerAuth(AuthBase):
    """The token as a requests auth object: with a bare header, requests would let a ~/.netrc
    entry for the host replace it with Basic auth."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"  # never the token, even in a debugger or a log line
