"""The HTTP transport every broker client shares (Upstox's, Kite's): one pooled session, timeouts,
a bounded body read under an overall deadline, error mapping through the broker's own
`interpret`, and the call observer. Each broker adds its routes table, its wire shapes and its
authentication on top (upstox.py, kite.py).
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from decimal import InvalidOperation
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from openalgo_gtt.brokers import deadline
from openalgo_gtt.brokers.base import BrokerCall, BrokerCallObserver
from openalgo_gtt.brokers.errors import (
    BrokerError,
    BrokerTimeout,
    BrokerUnreachable,
    UnreadableAnswer,
)

log = logging.getLogger(__name__)

# What requests' Session would add to every call (its User-Agent, gzip, keep-alive).
_BASE_HEADERS = dict(requests.utils.default_headers())
# A call with less time than this left in its request's deadline is not sent.
MIN_CALL_SECONDS = 0.05
POOL_SIZE = 16  # connections kept per host: about one per worker thread
MAX_BODY = 64 * 1024 * 1024  # refuse to buffer a runaway body (the full GTT list is far smaller)
# Parse failures of a success payload; _call turns them into UnreadableAnswer.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, InvalidOperation, OverflowError)

T = TypeVar("T")


class BrokerHttp:
    """The transport every broker client shares: one pooled session and `_call`, the one place
    that talks HTTP. A broker sets `routes` (name -> (method, path template)) and `interpret`
    (one HTTP answer -> its success payload, or the matching BrokerError). `timeout` is used for both connecting and each read; one attempt never
    takes longer than twice it, even if the body trickles in."""

    label = "the broker"  # how answers name this broker ("Upstox", "Kite")
    routes: dict[str, tuple[str, str]] = {}
    # (status, raw body, is_write, bearer=...) -> payload; a staticmethod on each broker's class.
    interpret: Callable[..., dict]

    def __init__(self, base_url: str, *, timeout: float, observer: BrokerCallObserver | None = None,
                 session: requests.Session | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._observer = observer
        self._session = session if session is not None else _pooled_session(self._base_url)
        # Each call is a prepared request sent through the pooled adapter (both public requests
        # APIs): Session.request would merge the session's settings on every call, at a CPU cost
        # bench/bench_http_send.py measures, for headers, cookies and hooks this client never has.
        self._adapter = self._session.get_adapter(self._base_url)
        self._send_options = {"proxies": dict(self._session.proxies), "verify": self._session.verify, "cert": None}

    def close(self) -> None:
        self._session.close()

    def _call(self, route: str, parse: Callable[[dict], T], *, path_args: dict[str, str] | None = None,
              query: str | None = None, auth: AuthBase | None = None, body: Any = None,
              form: dict[str, str] | None = None, pace: Callable[[], object] | None = None) -> T:
        """Send one call on `route` and return `parse(success payload)`, or raise a BrokerError.
        The observer sees the route's path template, so no id in the path reaches the audit.

        `pace` (an order pacer's acquire) blocks until the call's send slot. It runs once the
        request is fully built, right before it is written, so that nothing but the write itself
        lies between the slot and the broker (see pacing.py); an error it raises (PacingTimeout)
        means nothing was sent and is not reported as a call."""
        method, template = self.routes[route]
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
        slot = None
        try:
            prepared = _prepare(method, url, headers, auth, data)
            if pace is not None:
                slot = pace()
        except BrokerError as exc:  # nothing was sent
            exc.broker = exc.broker or self.label
            raise
        started = time.monotonic()
        status: int | None = None
        try:
            timeout = deadline.bounded(self._timeout)
            if timeout < MIN_CALL_SECONDS:  # the request's deadline has passed: nothing is sent
                if slot is not None:
                    slot.give_back()
                raise BrokerTimeout("no time left within the request's deadline (the broker timeout); not sent",
                                    may_have_reached=False)
            # The whole answer, body included, is due by this moment, fixed before the send: sized
            # after the headers, it would shrink by the time they took, and an answer arriving well
            # within the budget would be thrown away as "too slow".
            answer_due = started + deadline.bounded(2 * self._timeout)
            response = self._send(prepared, is_write, timeout)
            status = response.status_code
            raw = self._read_body(response, answer_due, is_write)
            payload = self.interpret(status, raw, is_write, bearer=auth is not None)
            try:
                # Parsed here so a malformed success is reported to the observer as a failure.
                result = parse(payload)
            except _SHAPE_ERRORS as exc:
                raise UnreadableAnswer(f"answer not in the documented shape: {exc}", http_status=status,
                                       may_have_reached=is_write) from exc
        except BrokerError as exc:
            exc.broker = exc.broker or self.label
            self._report(method, template, status, started, f"{type(exc).__name__}: {exc.message}")
            raise
        self._report(method, template, status, started, None)
        return result

    def _send(self, prepared: requests.PreparedRequest, is_write: bool, timeout: float) -> requests.Response:
        # stream=True: the body is read by _read_body under an overall deadline. No redirect is
        # followed (a redirect from a broker's API is an unreadable answer).
        try:
            return self._adapter.send(prepared, stream=True, timeout=(timeout, timeout), **self._send_options)
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


def _prepare(method: str, url: str, headers: dict, auth: AuthBase | None,
             data: bytes | None) -> requests.PreparedRequest:
    try:
        return requests.Request(method, url, headers={**_BASE_HEADERS, **headers}, auth=auth, data=data).prepare()
    except requests.RequestException as exc:  # an unusable URL: nothing was sent
        raise BrokerUnreachable(f"request failed: {exc}", may_have_reached=False) from exc


def _pooled_session(base_url: str) -> requests.Session:
    session = requests.Session()
    # Retries are done by each broker's _request (so the observer sees each attempt), none in urllib3.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # requests reads the proxy and CA-bundle variables from the environment on every call (a
    # scan of os.environ per request); read them once here instead. trust_env=False also keeps
    # a ~/.netrc entry from replacing the Authorization header.
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


