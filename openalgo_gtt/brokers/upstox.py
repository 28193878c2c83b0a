"""Upstox v3 GTT and market-quote client: the `Broker` protocol over Upstox's HTTP API.

Shaped like pykiteconnect: a table of named routes, one private `_request` that owns auth,
timeouts, pacing, retries, JSON decoding and error mapping, and thin public methods on top.
Every failure reaches the caller as an `openalgo_gtt.brokers.errors` type, never a KeyError.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from openalgo_gtt.brokers.base import BrokerCall, BrokerCallObserver
from openalgo_gtt.domain.model import BrokerGtt, GttRequest, GttRule, Quote, RuleState
from openalgo_gtt.brokers.errors import (
    BrokerError,
    BrokerFailure,
    BrokerTimeout,
    BrokerUnreachable,
    InputRejected,
    RateLimited,
    TokenRejected,
    UnreadableAnswer,
)
from openalgo_gtt.brokers.pacing import OrderPacer

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.upstox.com"

ROUTES: dict[str, tuple[str, str]] = {
    "gtt.place": ("POST", "/v3/order/gtt/place"),
    "gtt.modify": ("PUT", "/v3/order/gtt/modify"),
    "gtt.cancel": ("DELETE", "/v3/order/gtt/cancel"),  # a DELETE with a JSON body
    "gtt.details": ("GET", "/v3/order/gtt"),  # ?gtt_order_id=...; without it: every GTT
    "quote.ltp": ("GET", "/v3/market-quote/ltp"),
    "quote.ohlc": ("GET", "/v3/market-quote/ohlc"),  # ?instrument_key=...&interval=1d
}
ORDER_ROUTES = frozenset({"gtt.place", "gtt.modify", "gtt.cancel"})

TOKEN_ERROR_CODE = "UDAPI100050"
QUOTE_BATCH = 500  # Upstox's documented maximum of instrument keys per quote call
POOL_SIZE = 16  # connections kept per host: about one per worker thread
MAX_BODY = 64 * 1024 * 1024  # refuse to buffer a runaway body (the full GTT list is far smaller)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Parse failures of a success payload; _attempt turns them into UnreadableAnswer.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, InvalidOperation, OverflowError)

T = TypeVar("T")


def _payload(payload: dict) -> dict:
    return payload


class UpstoxBroker:
    """The `Broker` protocol for Upstox.

    `access_token` may be a callable so a token refreshed after 03:30 IST is picked up on the
    next call. `timeout` is used for both connecting and each read; one attempt never takes
    longer than twice it, even if the body trickles in. Reads retry `read_retries` times on
    connection errors, 429 and 5xx, after `retry_backoff`, then twice that, ... seconds;
    writes are never re-sent (see errors.may_have_reached). Order calls first take a slot
    from `pacer`, waiting at most `pace_timeout` seconds (PacingTimeout after that).
    """

    name = "upstox"

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
        self._base_url = base_url.rstrip("/")
        self._token = access_token if callable(access_token) else (lambda: access_token)
        self._timeout = timeout
        self._pacer = pacer
        self._pace_timeout = pace_timeout
        self._observer = observer
        self._read_retries = max(read_retries, 0)
        self._retry_backoff = retry_backoff
        self._session = session if session is not None else _pooled_session(self._base_url)

    def close(self) -> None:
        self._session.close()

    # ----- GTT -----------------------------------------------------------------------------

    def place_gtt(self, request: GttRequest) -> str:
        body = {
            "type": request.type,
            "quantity": request.quantity,
            "product": request.product,
            "instrument_token": request.instrument_key,
            "transaction_type": request.transaction_type,
            "rules": [_rule_json(rule) for rule in request.rules],
        }
        return self._request("gtt.place", body=body, parse=_first_gtt_id)

    def modify_gtt(self, gtt_id: str, request: GttRequest) -> str:
        # Instrument, product and side cannot change on modify, so Upstox does not take them.
        body = {
            "type": request.type,
            "quantity": request.quantity,
            "rules": [_rule_json(rule) for rule in request.rules],
            "gtt_order_id": gtt_id,
        }
        return self._request("gtt.modify", body=body, parse=_first_gtt_id)

    def cancel_gtt(self, gtt_id: str) -> str:
        return self._request("gtt.cancel", body={"gtt_order_id": gtt_id}, parse=_first_gtt_id)

    def get_gtt(self, gtt_id: str) -> BrokerGtt | None:
        def only_this(payload: dict) -> BrokerGtt | None:
            # `data` is a list even for one id; an empty list means Upstox does not know it.
            gtts = _parse_gtts(payload)
            for gtt in gtts:
                if gtt.gtt_id == gtt_id:
                    return gtt
            if gtts:
                raise ValueError(f"asked for GTT {gtt_id}, got {[g.gtt_id for g in gtts]}")
            return None

        query = f"gtt_order_id={quote(gtt_id, safe='')}"
        return self._request("gtt.details", query=query, parse=only_this)

    def list_gtts(self) -> list[BrokerGtt]:
        return self._request("gtt.details", parse=_parse_gtts)

    # ----- quotes --------------------------------------------------------------------------

    def quotes(self, instrument_keys: Sequence[str]) -> dict[str, Quote]:
        """Last price and today's open; keys Upstox does not answer for are left out."""
        result: dict[str, Quote] = {}
        for batch in _batches(instrument_keys):
            query = _keys_query(batch) + "&interval=1d"
            result.update(self._request("quote.ohlc", query=query, parse=partial(_parse_ohlc, asked=batch)))
        return result

    def last_prices(self, instrument_keys: Sequence[str]) -> dict[str, Decimal]:
        """Last traded price per instrument key, from the lighter LTP endpoint."""
        result: dict[str, Decimal] = {}
        for batch in _batches(instrument_keys):
            query = _keys_query(batch)
            result.update(self._request("quote.ltp", query=query, parse=partial(_parse_ltp, asked=batch)))
        return result

    # ----- the one place that talks HTTP ---------------------------------------------------

    def _request(self, route: str, *, query: str | None = None, body: Any = None,
                 parse: Callable[[dict], T] = _payload) -> T:
        """Send one call and return `parse(success payload)`, or raise a BrokerError."""
        method, path = ROUTES[route]
        is_write = method != "GET"
        if route in ORDER_ROUTES and self._pacer is not None:
            self._token()  # an expired login fails here, before it takes a pacing slot
            self._pacer.acquire(self._pace_timeout)
        retries_left = 0 if is_write else self._read_retries
        delay = self._retry_backoff
        while True:
            try:
                return self._attempt(method, path, query, body, is_write, parse)
            except (BrokerUnreachable, RateLimited, BrokerFailure):
                # Only idempotent reads get here with retries left. Timeouts are not retried:
                # a server that hung once is likely to hang again, and the wait must stay bounded.
                if retries_left <= 0:
                    raise
            retries_left -= 1
            time.sleep(delay)
            delay *= 2

    def _attempt(self, method: str, path: str, query: str | None, body: Any, is_write: bool,
                 parse: Callable[[dict], T]) -> T:
        url = self._base_url + path + (f"?{query}" if query else "")
        headers = {"Accept": "application/json"}
        auth = _BearerAuth(self._token())
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        started = time.monotonic()
        status: int | None = None
        try:
            response = self._send(method, url, headers, auth, data, is_write)
            status = response.status_code
            raw = self._read_body(response, started + 2 * self._timeout, is_write)
            payload = _interpret(status, raw, is_write)
            try:
                # Parsed here so a malformed success is reported to the observer as a failure.
                result = parse(payload)
            except _SHAPE_ERRORS as exc:
                raise UnreadableAnswer(f"answer not in the documented shape: {exc}", http_status=status,
                                       may_have_reached=is_write) from exc
        except BrokerError as exc:
            self._report(method, path, status, started, f"{type(exc).__name__}: {exc.message}")
            raise
        self._report(method, path, status, started, None)
        return result

    def _send(self, method: str, url: str, headers: dict, auth: AuthBase, data: bytes | None,
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
    # Retries are done by _request (so the observer sees each attempt), none in urllib3.
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


def _interpret(status: int, raw: bytes, is_write: bool) -> dict:
    """Map one HTTP answer to its success payload or to the matching BrokerError."""
    payload = _decode(raw)
    code, message = _error_of(payload)
    text = message or f"HTTP {status}: {_snippet(raw) or '(empty body)'}"
    if status == 401 or code == TOKEN_ERROR_CODE:
        raise TokenRejected(text, code=code, http_status=status, may_have_reached=False)
    if 200 <= status < 300:
        if isinstance(payload, dict) and payload.get("status") == "success":
            return payload
        if isinstance(payload, dict) and payload.get("status") == "error" and (code or message):
            # An explicit error envelope: Upstox says it refused, even if the status was 2xx.
            raise InputRejected(text, code=code, http_status=status, may_have_reached=False)
        raise UnreadableAnswer(f"HTTP {status} without a success payload: {_snippet(raw)!r}",
                               http_status=status, may_have_reached=is_write)
    if status == 429:
        raise RateLimited(text, code=code, http_status=status, may_have_reached=False)
    if 400 <= status < 500:
        raise InputRejected(text, code=code, http_status=status, may_have_reached=False)
    if status >= 500:
        raise BrokerFailure(text, code=code, http_status=status, may_have_reached=is_write)
    raise UnreadableAnswer(f"unexpected HTTP {status}", http_status=status, may_have_reached=is_write)


def _decode(raw: bytes) -> Any:
    # parse_float=Decimal keeps prices exact from the wire onwards.
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _error_of(payload: Any) -> tuple[str | None, str | None]:
    """The first error's code and message; Upstox sends `error_code` and the deprecated
    `errorCode`, so either is read."""
    if not isinstance(payload, dict) or not isinstance(payload.get("errors"), list):
        return None, None
    first = payload["errors"][0] if payload["errors"] else None
    if not isinstance(first, dict):
        return None, None
    code = first.get("error_code") or first.get("errorCode")
    message = first.get("message")
    return (str(code) if code else None), (str(message) if message else None)


def _snippet(raw: bytes) -> str:
    return raw[:200].decode("utf-8", "replace").strip()


# ----- request shaping -----------------------------------------------------------------------


def _rule_json(rule: GttRule) -> dict:
    out: dict[str, Any] = {
        "strategy": rule.strategy,
        "trigger_type": rule.trigger_type,
        "trigger_price": _number(rule.trigger_price),
    }
    if rule.trailing_gap is not None:
        out["trailing_gap"] = _number(rule.trailing_gap)
    if rule.market_protection is not None:
        out["market_protection"] = rule.market_protection
    return out


def _number(value: Decimal) -> float:
    """A Decimal as a JSON number. float(str(d)) is the nearest double to the decimal, whose
    repr (what json.dumps writes) is the shortest string that reads back to it: 9.55 -> 9.55."""
    number = float(str(value))
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite price: {value!r}")
    return number


def _batches(keys: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), QUOTE_BATCH):
        yield unique[start : start + QUOTE_BATCH]


def _keys_query(keys: Sequence[str]) -> str:
    # Commas stay literal as separators; everything else is encoded ("|" -> %7C, " " -> %20).
    return "instrument_key=" + ",".join(quote(key, safe="") for key in keys)


# ----- answer parsing ------------------------------------------------------------------------


# The parsers below raise KeyError/ValueError/TypeError on any deviation from the documented
# shape; _attempt turns that into UnreadableAnswer (may_have_reached=True for a write: Upstox
# said success, so the work was very likely done even though its id is missing).


def _first_gtt_id(payload: dict) -> str:
    return _text(payload["data"]["gtt_order_ids"][0])


def _parse_ohlc(payload: dict, asked: Sequence[str]) -> dict[str, Quote]:
    quotes = {}
    for key, item in _quote_items(payload, asked):
        live = item.get("live_ohlc")
        day_open = _price_or_none(live.get("open")) if isinstance(live, dict) else None
        # Before the market opens Upstox reports open as 0 or leaves it out.
        quotes[key] = Quote(key, _price(item["last_price"]), day_open or None)
    return quotes


def _parse_ltp(payload: dict, asked: Sequence[str]) -> dict[str, Decimal]:
    return {key: _price(item["last_price"]) for key, item in _quote_items(payload, asked)}


def _quote_items(payload: dict, asked: Sequence[str]) -> Iterator[tuple[str, dict]]:
    """(instrument key, quote) pairs. The keys of `data` are SEGMENT:SYMBOL, not the keys we
    sent, so each value is mapped back through its `instrument_token`."""
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("quote answer without a data object")
    wanted = set(asked)
    for item in data.values():
        if not isinstance(item, dict):
            continue
        key = item.get("instrument_token")
        if isinstance(key, str) and key in wanted and _price_or_none(item.get("last_price")) is not None:
            yield key, item


def _parse_gtts(payload: dict) -> list[BrokerGtt]:
    data = payload["data"]
    if not isinstance(data, list):
        raise ValueError("GTT details without a data list")
    return [_parse_gtt(item) for item in data]


def _parse_gtt(item: dict) -> BrokerGtt:
    instrument_key = str(item["instrument_token"])
    rules = item["rules"]
    if not isinstance(rules, list) or not rules:
        raise ValueError("rules is not a non-empty list")
    return BrokerGtt(
        gtt_id=_text(item["gtt_order_id"]),
        type=_text(item["type"]),
        instrument_key=instrument_key,
        segment=str(item.get("exchange") or instrument_key.partition("|")[0]),
        trading_symbol=str(item.get("trading_symbol") or ""),
        quantity=_integer(item["quantity"]),
        product=_text(item["product"]),
        rules=tuple(_parse_rule(rule) for rule in rules),
        created_at=_from_micros(item.get("created_at")),
        expires_at=_from_micros(item.get("expires_at")),
    )


def _parse_rule(rule: dict) -> RuleState:
    return RuleState(
        strategy=_text(rule["strategy"]),
        trigger_type=_text(rule["trigger_type"]),
        trigger_price=_price(rule["trigger_price"]),
        transaction_type=_text(rule["transaction_type"]),
        status=_text(rule["status"]),
        message=_optional_text(rule.get("message")),
        order_id=_optional_text(rule.get("order_id")),
        trailing_gap=_price_or_none(rule.get("trailing_gap")),
    )


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value != int(value):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _price(value: Any) -> Decimal:
    """A JSON number as Decimal, through str so a float never leaks binary noise in."""
    if type(value) is Decimal:  # what _decode makes of every JSON fraction: exact already
        price = value
    elif isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"expected a number, got {value!r}")
    else:
        price = Decimal(str(value))
    if not price.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return price


def _price_or_none(value: Any) -> Decimal | None:
    """Optional numbers: None when absent, null or not a number."""
    try:
        return None if value is None else _price(value)
    except ValueError:
        return None


def _from_micros(value: Any) -> datetime | None:
    """Upstox GTT timestamps are epoch microseconds; None when absent."""
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=_integer(value))
