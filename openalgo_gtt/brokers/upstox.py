"""Upstox's HTTP API: the routes table, the transport, and the GTT and market-quote client.

Shaped like pykiteconnect: one table of named routes (`ROUTES`, the login endpoints included),
one transport (`UpstoxHttp._call`) that owns the session, timeouts, the bounded body read, error
mapping and the call observer, and thin public methods on top. `UpstoxBroker` (the `Broker`
protocol: GTTs and quotes) adds the bearer token, pacing and retries; `UpstoxLoginClient`
(upstox_login.py) makes the login calls through the same table and transport. The JSON shapes
are in upstox_wire.py. Every failure reaches the caller as an `openalgo_gtt.brokers.errors`
type, never a KeyError.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from decimal import InvalidOperation
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from openalgo_gtt.brokers.base import BrokerCall, BrokerCallObserver
from openalgo_gtt.brokers.errors import (
    BrokerError,
    BrokerFailure,
    BrokerTimeout,
    BrokerUnreachable,
    RateLimited,
    UnreadableAnswer,
)
from openalgo_gtt.brokers.pacing import OrderPacer
from openalgo_gtt.brokers.upstox_wire import (
    batches,
    first_gtt_id,
    interpret,
    keys_query,
    parse_gtts,
    parse_ohlc,
    rule_json,
)
from openalgo_gtt.domain.model import UPSTOX_FEATURES, BrokerGtt, GttRequest, Quote

log = logging.getLogger(__name__)

ROUTES: dict[str, tuple[str, str]] = {
    "gtt.place": ("POST", "/v3/order/gtt/place"),
    "gtt.modify": ("PUT", "/v3/order/gtt/modify"),
    "gtt.cancel": ("DELETE", "/v3/order/gtt/cancel"),  # a DELETE with a JSON body
    "gtt.details": ("GET", "/v3/order/gtt"),  # ?gtt_order_id=...; without it: every GTT
    "quote.ohlc": ("GET", "/v3/market-quote/ohlc"),  # ?instrument_key=...&interval=1d
    # The login: no bearer token. The dialog is opened by the browser, never called.
    "login.dialog": ("GET", "/v2/login/authorization/dialog"),
    "login.token": ("POST", "/v2/login/authorization/token"),  # form-encoded
    "login.token_request": ("POST", "/v3/login/auth/token/request/{client_id}"),
}
ORDER_ROUTES = frozenset({"gtt.place", "gtt.modify", "gtt.cancel"})

POOL_SIZE = 16  # connections kept per host: about one per worker thread
MAX_BODY = 64 * 1024 * 1024  # refuse to buffer a runaway body (the full GTT list is far smaller)
# Parse failures of a success payload; _call turns them into UnreadableAnswer.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, InvalidOperation, OverflowError)

T = TypeVar("T")


class UpstoxHttp:
    """The transport every Upstox client shares: one pooled session and `_call`, the one place
    that talks HTTP. `timeout` is used for both connecting and each read; one attempt never
    takes longer than twice it, even if the body trickles in."""

    def __init__(self, base_url: str, *, timeout: float, observer: BrokerCallObserver | None = None,
                 session: requests.Session | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._observer = observer
        self._session = session if session is not None else _pooled_session(self._base_url)

    def close(self) -> None:
        self._session.close()

    def _call(self, route: str, parse: Callable[[dict], T], *, path_args: dict[str, str] | None = None,
              query: str | None = None, auth: AuthBase | None = None, body: Any = None,
              form: dict[str, str] | None = None) -> T:
        """Send one call on `route` and return `parse(success payload)`, or raise a BrokerError.
        The observer sees the route's path template, so no id in the path reaches the audit."""
        method, template = ROUTES[route]
        is_write = method != "GET"
        path = template.format_map({k: quote(v, safe="") for k, v in path_args.items()}) if path_args else template
        url = self._base_url + path + (f"?{query}" if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        elif form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode(form).encode()
        started = time.monotonic()
        status: int | None = None
        try:
            response = self._send(method, url, headers, auth, data, is_write)
            status = response.status_code
            raw = self._read_body(response, started + 2 * self._timeout, is_write)
            payload = interpret(status, raw, is_write, bearer=auth is not None)
            try:
                # Parsed here so a malformed success is reported to the observer as a failure.
                result = parse(payload)
            except _SHAPE_ERRORS as exc:
                raise UnreadableAnswer(f"answer not in the documented shape: {exc}", http_status=status,
                                       may_have_reached=is_write) from exc
        except BrokerError as exc:
            self._report(method, template, status, started, f"{type(exc).__name__}: {exc.message}")
            raise
        self._report(method, template, status, started, None)
        return result

    def _send(self, method: str, url: str, headers: dict, auth: AuthBase | None, data: bytes | None,
              is_write: bool) -> requests.Response:
        # stream=True: the body is read by _read_body under an overall deadline.
        try:
            return self._session.request(
                method, url, headers=headers, auth=auth, data=data, stream=True, allow_redirects=False,
                timeout=(self._timeout, self._timeout),
            )
        except requests.ConnectTimeout as exc:
            raise BrokerTimeout(f"connect timeout: {exc}", may_have_reached=False) from exc
        except requests.Timeout as exc:  # the request was sent; the answer did not come
            raise BrokerTimeout(f"read timeout: {exc}", may_have_reached=is_write) from exc
        except requests.ConnectionError as exc:
            sent = not _never_connected(exc)
            raise BrokerUnreachable(f"connection failed: {exc}", may_have_reached=is_write and sent) from exc
        except requests.RequestException as exc:
            raise BrokerUnreachable(f"request failed: {exc}", may_have_reached=is_write) from exc

    @staticmethod
    def _read_body(response: requests.Response, deadline: float, is_write: bool) -> bytes:
        """The whole body, or BrokerTimeout once `deadline` passes. The socket read timeout
        bounds each recv, but a body trickled a byte at a time would never trip it; read1
        returns whatever one recv brought, so the deadline is checked between recvs."""
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise BrokerTimeout("answer body too slow", http_status=response.status_code,
                                        may_have_reached=is_write)
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY:
                    raise UnreadableAnswer("answer body too large", http_status=response.status_code,
                                           may_have_reached=is_write)
        except BrokerError:
            response.close()
            raise
        except ReadTimeoutError as exc:
            response.close()
            raise BrokerTimeout(f"read timeout in body: {exc}", http_status=response.status_code,
                                may_have_reached=is_write) from exc
        except (Urllib3Error, OSError) as exc:  # reset or closed mid-body, bad gzip
            response.close()
            raise BrokerUnreachable(f"connection lost in body: {exc}", http_status=response.status_code,
                                    may_have_reached=is_write) from exc
        response.raw.release_conn()  # fully read: the connection can go back to the pool
        return b"".join(chunks)

    def _report(self, method: str, path: str, status: int | None, started: float, error: str | None) -> None:
        if self._observer is None:
            return
        call = BrokerCall(method, path, status, (time.monotonic() - started) * 1000.0, error)
        try:
            self._observer(call)
        except Exception:  # the audit hook must never turn a broker answer into a failure
            log.exception("broker call observer failed")


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

    # ----- pacing and retries --------------------------------------------------------------

    def _request(self, route: str, *, parse: Callable[[dict], T], query: str | None = None,
                 body: Any = None) -> T:
        """Send one call with the bearer token and return `parse(success payload)`, or raise a
        BrokerError."""
        method, _path = ROUTES[route]
        is_write = method != "GET"
        if route in ORDER_ROUTES and self._pacer is not None:
            self._token()  # an expired login fails here, before it takes a pacing slot
            self._pacer.acquire(self._pace_timeout)
        retries_left = 0 if is_write else self._read_retries
        delay = self._retry_backoff
        while True:
            try:
                return self._call(route, parse, query=query, body=body, auth=_BearerAuth(self._token()))
            except (BrokerUnreachable, RateLimited, BrokerFailure):
                # Only idempotent reads get here with retries left. Timeouts are not retried:
                # a server that hung once is likely to hang again, and the wait must stay bounded.
                if retries_left <= 0:
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


def _pooled_session(base_url: str) -> requests.Session:
    session = requests.Session()
    # Retries are done by UpstoxBroker._request (so the observer sees each attempt), none in urllib3.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # requests reads the proxy and CA-bundle variables from the environment on every call (a
    # scan of os.environ per request); read them once here instead. trust_env=False also keeps
    # a ~/.netrc entry from replacing the bearer token.
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    return session


def _never_connected(exc: BaseException) -> bool:
    """True when the failure happened before a connection existed (refused, DNS), so not a
    byte of the request can have reached Upstox. Anything else may have been sent."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, NewConnectionError):
            return True
        if isinstance(err, BaseException):
            stack.extend(a for a in err.args if isinstance(a, BaseException))
            stack.extend([getattr(err, "reason", None), err.__cause__, err.__context__])
    return False


