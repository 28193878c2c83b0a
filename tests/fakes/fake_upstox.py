"""A fake Upstox HTTP server, written from Upstox's documented v3 API, for tests.

It is a real `ThreadingHTTPServer` on 127.0.0.1 (a free port), so clients are tested through
real sockets: timeouts, resets and slow bodies behave as they would against Upstox.

Start and stop::

    with FakeUpstox(token="t0k3n", latency=0.05) as fake:   # or fake.start() ... fake.stop()
        broker = UpstoxBroker(fake.url, "t0k3n", timeout=0.5, pacer=None)

Routes (named as in the client's routes table)::

    gtt.place    POST   /v3/order/gtt/place
    gtt.modify   PUT    /v3/order/gtt/modify
    gtt.cancel   DELETE /v3/order/gtt/cancel        (JSON body {"gtt_order_id": ...})
    gtt.details  GET    /v3/order/gtt[?gtt_order_id=...]
    quote.ltp    GET    /v3/market-quote/ltp?instrument_key=K1,K2
    quote.ohlc   GET    /v3/market-quote/ohlc?instrument_key=K1,K2&interval=1d

Behaviour modelled on the documentation:
- `Authorization: Bearer <token>` must match `fake.token`, else 401 UDAPI100050.
- Place/modify validate like Upstox: SINGLE exactly 1 rule, MULTIPLE 2-3, ENTRY mandatory,
  TARGET/STOPLOSS only IMMEDIATE, no duplicate strategies, trailing_gap only on STOPLOSS,
  positive quantity and prices. Refusals are 400 with the documented envelope carrying both
  `errorCode` and `error_code` spellings (code UDAPI100038 for invalid input, UDAPI1134 /
  UDAPI1135 for a missing / malformed gtt_order_id).
- Upstox documents no code for "GTT not found"; modify/cancel of an unknown GTT (or cancel of
  one with no live rule) answer 400 with `fake.unknown_gtt_code` (invented, "UDAPI1133" by
  default; change it if a test needs another). Details of an unknown id answer `data: []`.
- New GTTs get ids like GTT-C26112200000001; ENTRY starts SCHEDULED, TARGET/STOPLOSS INACTIVE;
  created_at/expires_at are epoch microseconds; product I expires 23:59:59 IST today, D and
  MTF one year later. Modify replaces type, quantity and rules, keeping each strategy's status.
- Quotes answer only for instruments given to `set_price`, keyed `SEGMENT:SYMBOL`, with the
  requested key in `instrument_token`; more than 500 keys is a 400.

Test API:
- `url`: base URL to give the client.  `token`: the valid access token (settable).
- `latency`: seconds slept before every answer (settable).
- `calls`: list of (method, path, time.monotonic() at receipt); path without query.
  `calls_to(route)` filters them by route name; `clear_calls()` empties the list.
- `set_price(instrument_key, trading_symbol, segment, ltp, open=None)`: quote data. `open`
  None answers live_ohlc.open = 0, as Upstox does before the market opens.
- `set_rule_status(gtt_id, strategy, status, message=None, order_id=None)`: move a rule.
- `gtt(gtt_id)` -> the stored GTT (a copy, Upstox's JSON shape) or None; `gtts()` -> all.
- `inject(route, fault, times=1, *, after_work=False, seconds=None, status=None, code=None,
  message=None)`: the next `times` calls to `route` (a route name above, or "*" for any route;
  times=None means every call until `clear_faults()`) answer with `fault`:
      "hang" / "timeout"  sleep `seconds` (default 10) and close without an answer
      "refuse"            close the connection without any answer
      "reset"             send headers and half the body, then close
      "500"               500 with the UDAPI100500 envelope
      "502_html"          502 with an HTML page (a proxy's answer)
      "429"               429 UDAPI10005 "Too Many Request Sent"
      "401"               401 UDAPI100050
      "error"             `status` (default 400) with `code`/`message` in the envelope
      "empty"             200 with an empty body
      "truncated"         200 with the first half of the real JSON body
      "missing_fields"    200 {"status": "success"} with no `data`
      "trickle"           the real answer (the work is done), one byte every `seconds`
                          (default 0.05)
      "late"              hold the request `seconds` (default 4), then do the work and answer:
                          Upstox finishing a request after the client has stopped waiting
      "held"              like "late", but held until the test calls `release_held()` (or for
                          `seconds`, when given): the work is done at a moment the test picks,
                          whether its client timed out, is still waiting, or its process died
  With `after_work=True` the fake first does the work (the place/modify/cancel really
  happens) and then answers with the fault: "Upstox did it but the answer was lost".
  Faults are consumed first-in first-out per route; a route-specific fault wins over "*".
- `held` (how many requests a "held" fault holds now) and `release_held()` (every one of them
  does its work and answers whoever still listens; returns how many there were).
- `chaos`: a function of the route name returning `(fault, after_work, seconds)` or None, asked
  for every call no injected fault claims (a soak's random mix).
- `clear_faults()`, `reset()` (clears GTTs, prices, calls and faults).

Login routes (added for the daily login; answered outside the Bearer check, as Upstox does)::

    login.token          POST /v2/login/authorization/token   (form-encoded)
    login.dialog         GET  /v2/login/authorization/dialog
    login.token_request  POST /v3/login/auth/token/request/<client_id>

- `client_id` / `client_secret` (settable; "fake-client-id" / "fake-client-secret"): the app's
  credentials. A mismatch answers 401 UDAPI100016 "Invalid Credentials". `redirect_uri`: when
  set, the token exchange must send exactly it (else 401 UDAPI100016); None accepts any.
- `login_codes = {"good-code": {"user_id": ..., "user_name": ..., "email": ...}}`: the
  authorization codes the token exchange accepts, each with the user fields it answers. A code
  is single use (it is removed when exchanged). A good code answers 200 with Upstox's FLAT object
  (no status/data wrapper): `email, exchanges, products, broker, user_id, user_name,
  order_types, user_type, poa, is_active, access_token, extended_token`, plus the code's
  fields; the fresh `access_token` is then also accepted as a Bearer token by every other route.
  An unknown or used code answers 400 UDAPI100057 "Invalid Auth code"; grant_type other than
  authorization_code answers 400 UDAPI100038.
- The dialog answers a small 200 HTML page; with `dialog_code` set it plays a user who logs in
  at once: 302 to `<redirect_uri>?code=<dialog_code>&state=<state>` (the query's redirect_uri).
- The access-token request takes JSON `{"client_secret": ...}` and answers
  `{"status": "success", "data": {"authorization_expiry": "<epoch ms of the next 03:30 IST>",
  "notifier_url": <fake.notifier_url>}}`; each request is appended to `token_requests`.
  `approve_token_request(user_id="FAKE01", **fields)` plays the user approving it in the app: it
  issues a token (accepted from then on) and returns the payload Upstox would POST to the
  notifier URL: `{"client_id", "user_id", "access_token", "token_type": "Bearer", "expires_at",
  "issued_at" (epoch ms strings), "message_type": "access_token"}` (`fields` override).
- `issued_tokens` (a copy of the tokens issued by these routes); `expire_issued_tokens()` makes
  Upstox forget them (401 UDAPI100050 from then on), as at 03:30 IST.
- `inject()` and `calls_to()` accept the login route names too. `reset()` leaves the login
  settings and the issued tokens alone.

Everything is guarded by one lock, so tests may call the API while clients hammer the server.
"""
from __future__ import annotations

import copy
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

IST = timezone(timedelta(hours=5, minutes=30))

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v3/order/gtt/place"): "gtt.place",
    ("PUT", "/v3/order/gtt/modify"): "gtt.modify",
    ("DELETE", "/v3/order/gtt/cancel"): "gtt.cancel",
    ("GET", "/v3/order/gtt"): "gtt.details",
    ("GET", "/v3/market-quote/ltp"): "quote.ltp",
    ("GET", "/v3/market-quote/ohlc"): "quote.ohlc",
    ("GET", "/v2/order/details"): "order.details",
}
LOGIN_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v2/login/authorization/token"): "login.token",
    ("GET", "/v2/login/authorization/dialog"): "login.dialog",
}
TOKEN_REQUEST_PREFIX = "/v3/login/auth/token/request/"  # + client_id: "login.token_request"
LOGIN_ROUTE_NAMES = frozenset({*LOGIN_ROUTES.values(), "login.token_request"})
FAULTS = frozenset({
    "hang", "timeout", "refuse", "reset", "500", "502_html", "429", "401", "error",
    "empty", "truncated", "missing_fields", "trickle", "late", "held",
})
LIVE = frozenset({"SCHEDULED", "PENDING", "OPEN", "INACTIVE"})
STRATEGIES = ("ENTRY", "TARGET", "STOPLOSS")


@dataclass
class _Fault:
    kind: str
    remaining: int | None  # None: permanent
    after_work: bool
    seconds: float | None
    status: int | None
    code: str | None
    message: str | None


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] | None = None  # extra headers (the dialog's Location)


class _Refusal(Exception):
    """Raised by a handler to answer with Upstox's error envelope."""

    def __init__(self, status: int, code: str, message: str, property_path: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.property_path = status, code, message, property_path


def error_envelope(code: str, message: str, property_path: str | None = None) -> dict:
    """Upstox's documented error body, with both the deprecated and the current spellings."""
    return {
        "status": "error",
        "errors": [{
            "errorCode": code, "message": message, "propertyPath": property_path, "invalidValue": None,
            "error_code": code, "property_path": property_path, "invalid_value": None,
        }],
    }


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, default=lambda o: float(o) if isinstance(o, Decimal) else str(o)).encode()


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _next_0330_ist(moment: datetime) -> datetime:
    """The first 03:30 IST after `moment`: when Upstox ends a token (and an access-token request)."""
    local = moment.astimezone(IST)
    candidate = local.replace(hour=3, minute=30, second=0, microsecond=0)
    return candidate if candidate > local else candidate + timedelta(days=1)


def _login_route(method: str, path: str) -> str | None:
    if method == "POST" and path.startswith(TOKEN_REQUEST_PREFIX) and len(path) > len(TOKEN_REQUEST_PREFIX):
        return "login.token_request"
    return LOGIN_ROUTES.get((method, path))


class FakeUpstox:
    """See the module docstring for the test API."""

    def __init__(self, *, token: str = "fake-token", latency: float = 0.0) -> None:
        self.token = token
        self.latency = latency
        self.unknown_gtt_code = "UDAPI1133"
        self.calls: list[tuple[str, str, float]] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._gtts: dict[str, dict] = {}
        self._prices: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}  # order id -> the fields GET /v2/order/details answers (set_order)
        self._faults: dict[str, list[_Fault]] = {}
        # Optional: route -> (fault, after_work, seconds) or None, asked for each call that has
        # no injected fault (a soak's random mix of faults).
        self.chaos: Callable[[str], tuple[str, bool, float | None] | None] | None = None
        self._counter = 0
        # Requests a "held" fault holds until `release_held()` moves `_releases` on.
        self._held = threading.Condition()
        self._held_now = 0
        self._releases = 0
        # The login routes (see "Login routes" in the module docstring).
        self.client_id = "fake-client-id"
        self.client_secret = "fake-client-secret"
        self.redirect_uri: str | None = None
        self.login_codes: dict[str, dict] = {}
        self.dialog_code: str | None = None
        self.notifier_url = "https://openalgo-gtt.example/upstox/notifier/not-configured"
        self.token_requests: list[dict] = []
        self._issued: set[str] = set()
        self._token_counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- life cycle ----------------------------------------------------------------------

    def start(self) -> FakeUpstox:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = FakeHttpServer(("127.0.0.1", 0), handler)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-upstox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a hang, a trickle or the latency
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeUpstox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeUpstox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ----- test API ------------------------------------------------------------------------

    def set_price(self, instrument_key: str, trading_symbol: str, segment: str, ltp: Any,
                  open: Any = None) -> None:  # noqa: A002 - named like the quote field
        with self._lock:
            self._prices[instrument_key] = {
                "symbol": trading_symbol, "segment": segment,
                "ltp": Decimal(str(ltp)), "open": None if open is None else Decimal(str(open)),
            }

    def set_rule_status(self, gtt_id: str, strategy: str, status: str, message: str | None = None,
                        order_id: str | None = None) -> None:
        with self._lock:
            rule = self._rule(gtt_id, strategy)
            rule["status"], rule["message"] = status, message
            if order_id is not None:
                rule["order_id"] = order_id

    def gtt(self, gtt_id: str) -> dict | None:
        with self._lock:
            found = self._gtts.get(gtt_id)
            return copy.deepcopy(found) if found else None

    def gtts(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._gtts.values()))

    def inject(self, route: str, fault: str, times: int | None = 1, *, after_work: bool = False,
               seconds: float | None = None, status: int | None = None, code: str | None = None,
               message: str | None = None) -> None:
        if route != "*" and route not in ROUTES.values() and route not in LOGIN_ROUTE_NAMES:
            raise ValueError(f"unknown route {route!r}")
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {sorted(FAULTS)}")
        with self._lock:
            self._faults.setdefault(route, []).append(
                _Fault(fault, times, after_work, seconds, status, code, message))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def held(self) -> int:
        with self._held:
            return self._held_now

    def release_held(self) -> int:
        with self._held:
            count = self._held_now
            self._releases += 1
            self._held.notify_all()
        return count

    def calls_to(self, route: str) -> list[tuple[str, str, float]]:
        wanted = {key for key, name in ROUTES.items() if name == route}
        wanted |= {key for key, name in LOGIN_ROUTES.items() if name == route}
        with self._lock:
            return [call for call in self.calls if (call[0], call[1]) in wanted
                    or (route == "login.token_request" and _login_route(call[0], call[1]) == route)]

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return sorted(self._issued)

    def expire_issued_tokens(self) -> None:
        with self._lock:
            self._issued.clear()

    def approve_token_request(self, user_id: str = "FAKE01", **fields: Any) -> dict:
        """The user approves the access-token request: the payload Upstox POSTs to the notifier."""
        now = datetime.now(IST)
        token = self._issue_token()
        payload = {
            "client_id": self.client_id, "user_id": user_id, "access_token": token, "token_type": "Bearer",
            "expires_at": str(_micros(_next_0330_ist(now)) // 1000), "issued_at": str(_micros(now) // 1000),
            "message_type": "access_token",
        }
        payload.update(fields)
        return payload

    def _issue_token(self) -> str:
        with self._lock:
            self._token_counter += 1
            token = f"fake-login-token-{self._token_counter}-{secrets.token_hex(8)}"
            self._issued.add(token)
            return token

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def reset(self) -> None:
        with self._lock:
            self._gtts.clear()
            self._prices.clear()
            self._faults.clear()
            self.calls.clear()

    # ----- used by the handler -------------------------------------------------------------

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.calls.append((method, path, time.monotonic()))

    def _take_fault(self, route: str) -> _Fault | None:
        with self._lock:
            for name in (route, "*"):
                queue = self._faults.get(name)
                if not queue:
                    continue
                fault = queue[0]
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.pop(0)
                return fault
        if self.chaos is not None:
            drawn = self.chaos(route)
            if drawn is not None:
                kind, after_work, seconds = drawn
                return _Fault(kind, 1, after_work, seconds, None, None, None)
        return None

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; True when the sleep was cut short."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    def _hold(self, seconds: float | None) -> bool:
        """Hold a request until `release_held()` (or `seconds`); True when the server is stopping."""
        deadline = None if seconds is None else time.monotonic() + seconds
        with self._held:
            release = self._releases
            self._held_now += 1
            try:
                while self._releases == release and not self._stopping.is_set():
                    left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                    if left <= 0:
                        break
                    self._held.wait(left)
            finally:
                self._held_now -= 1
        return self._stopping.is_set()

    def _answer(self, route: str, headers: Any, query: dict[str, list[str]], body: bytes) -> _Answer:
        """The normal answer to one call: the work is done here, under the lock."""
        try:
            if not self._bearer_ok(headers.get("Authorization")):
                raise _Refusal(401, "UDAPI100050", "Invalid token used to access API")
            with self._lock:
                data = getattr(self, "_do_" + route.replace(".", "_"))(query, body)
            return _Answer(200, _json_bytes({"status": "success", "data": data, "metadata": {"latency": 3}}))
        except _Refusal as refusal:
            return _Answer(refusal.status,
                           _json_bytes(error_envelope(refusal.code, refusal.message, refusal.property_path)))

    def _bearer_ok(self, header: str | None) -> bool:
        if header == f"Bearer {self.token}":
            return True
        with self._lock:
            return bool(header) and header.startswith("Bearer ") and header[len("Bearer "):] in self._issued

    def _login_answer(self, route: str, path: str, query: dict, body: bytes) -> _Answer:
        """The login routes: no Bearer token; the token exchange answers a flat object."""
        try:
            with self._lock:
                if route == "login.token":
                    return _Answer(200, _json_bytes(self._do_login_token(body)))
                if route == "login.dialog":
                    return self._do_login_dialog(query)
                data = self._do_login_token_request(path[len(TOKEN_REQUEST_PREFIX):], body)
                return _Answer(200, _json_bytes({"status": "success", "data": data}))
        except _Refusal as refusal:
            return _Answer(refusal.status,
                           _json_bytes(error_envelope(refusal.code, refusal.message, refusal.property_path)))

    def _do_login_token(self, body: bytes) -> dict:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "authorization_code":
            raise _Refusal(400, "UDAPI100038", "Invalid grant_type", "grant_type")
        if (form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret
                or (self.redirect_uri is not None and form.get("redirect_uri") != self.redirect_uri)):
            raise _Refusal(401, "UDAPI100016", "Invalid Credentials")
        user = self.login_codes.pop(form.get("code") or "", None)
        if user is None:
            raise _Refusal(400, "UDAPI100057", "Invalid Auth code", "code")
        answer = {
            "email": "trader@example.com", "exchanges": ["NSE", "NFO", "BSE", "MCX"],
            "products": ["D", "I", "MTF"], "broker": "UPSTOX", "user_id": "FAKE01", "user_name": "Fake Trader",
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"], "user_type": "individual", "poa": False,
            "is_active": True, "extended_token": None,
        }
        answer.update(user)
        answer["access_token"] = self._issue_token()
        return answer

    def _do_login_dialog(self, query: dict) -> _Answer:
        redirect_uri = (query.get("redirect_uri") or [""])[0]
        if self.dialog_code is not None and redirect_uri:
            state = (query.get("state") or [""])[0]
            separator = "&" if "?" in redirect_uri else "?"
            location = f"{redirect_uri}{separator}{urlencode({'code': self.dialog_code, 'state': state})}"
            return _Answer(302, b"", "text/html", {"Location": location})
        page = b"<html><head><title>Upstox login</title></head><body>Log in to Upstox</body></html>"
        return _Answer(200, page, "text/html")

    def _do_login_token_request(self, client_id: str, body: bytes) -> dict:
        req = _json_object(body)
        if client_id != self.client_id or req.get("client_secret") != self.client_secret:
            raise _Refusal(401, "UDAPI100016", "Invalid Credentials")
        self.token_requests.append({"client_id": client_id, "at": time.monotonic()})
        return {"authorization_expiry": str(_micros(_next_0330_ist(datetime.now(IST))) // 1000),
                "notifier_url": self.notifier_url}

    # ----- the documented operations (called with the lock held) ---------------------------

    def _do_gtt_place(self, query: dict, body: bytes) -> dict:
        req = _json_object(body)
        gtt_type, quantity, rules = _check_gtt(req)
        product = req.get("product")
        if product not in ("I", "D", "MTF"):
            raise _Refusal(400, "UDAPI100038", "Invalid product", "product")
        key = req.get("instrument_token")
        if not isinstance(key, str) or "|" not in key:
            raise _Refusal(400, "UDAPI100038", "Invalid instrument_token", "instrument_token")
        side = req.get("transaction_type")
        if side not in ("BUY", "SELL"):
            raise _Refusal(400, "UDAPI100038", "Invalid transaction_type", "transaction_type")
        now = datetime.now(IST)
        self._counter += 1
        gtt_id = f"GTT-C{now:%y%m%d}{self._counter:08d}"
        if product == "I":
            expires = now.replace(hour=23, minute=59, second=59, microsecond=0)
        else:
            expires = now + timedelta(days=365)
        known = self._prices.get(key, {})
        self._gtts[gtt_id] = {
            "type": gtt_type,
            "exchange": known.get("segment") or key.partition("|")[0],
            "quantity": quantity,
            "product": product,
            "rules": _stored_rules(rules, side, {}),
            "trading_symbol": known.get("symbol") or key.partition("|")[2],
            "instrument_token": key,
            "gtt_order_id": gtt_id,
            "expires_at": _micros(expires),
            "created_at": _micros(now),
        }
        return {"gtt_order_ids": [gtt_id]}

    def _do_gtt_modify(self, query: dict, body: bytes) -> dict:
        req = _json_object(body)
        gtt = self._live_gtt(req.get("gtt_order_id"))
        gtt_type, quantity, rules = _check_gtt(req)
        old = {rule["strategy"]: rule for rule in gtt["rules"]}
        entry = old.get("ENTRY")
        if entry and entry["status"] == "OPEN":
            new_entry = next(rule for rule in rules if rule["strategy"] == "ENTRY")
            if quantity != gtt["quantity"] or new_entry["trigger_type"] != "IMMEDIATE":
                raise _Refusal(400, "UDAPI100038",
                               "ENTRY is OPEN: quantity cannot change and only IMMEDIATE is allowed")
        side = entry["transaction_type"] if entry else "BUY"
        gtt.update(type=gtt_type, quantity=quantity, rules=_stored_rules(rules, side, old))
        return {"gtt_order_ids": [gtt["gtt_order_id"]]}

    def _do_gtt_cancel(self, query: dict, body: bytes) -> dict:
        gtt = self._live_gtt(_json_object(body).get("gtt_order_id"))
        for rule in gtt["rules"]:
            if rule["status"] in LIVE:
                rule["status"] = "CANCELLED"
        return {"gtt_order_ids": [gtt["gtt_order_id"]]}

    def _do_gtt_details(self, query: dict, body: bytes) -> list:
        wanted = query.get("gtt_order_id")
        if wanted is None:
            return copy.deepcopy(list(self._gtts.values()))
        gtt_id = _checked_id(wanted[0])
        found = self._gtts.get(gtt_id)
        return [copy.deepcopy(found)] if found else []

    def set_order(self, order_id: str, **fields: Any) -> None:
        """What GET /v2/order/details answers for `order_id` (status, filled_quantity,
        average_price, status_message, ...)."""
        with self._lock:
            self.orders[order_id] = {"order_id": order_id, **fields}

    def _do_order_details(self, query: dict, body: bytes) -> dict:
        (order_id,) = query.get("order_id") or [""]
        with self._lock:
            order = self.orders.get(order_id)
        if order is None:
            raise _Refusal(400, "UDAPI100010", f"Order not found: {order_id}", "order_id")
        return dict(order)

    def _do_quote_ltp(self, query: dict, body: bytes) -> dict:
        return {
            f"{p['segment']}:{p['symbol']}": {
                "last_price": p["ltp"], "instrument_token": key, "ltq": 1, "volume": 1000, "cp": p["ltp"],
            }
            for key, p in self._quoted(query)
        }

    def _do_quote_ohlc(self, query: dict, body: bytes) -> dict:
        if query.get("interval", [None])[0] not in ("1d", "I1", "I30"):
            raise _Refusal(400, "UDAPI100038", "Invalid interval", "interval")
        out = {}
        for key, p in self._quoted(query):
            day_open = p["open"] if p["open"] is not None else 0
            ohlc = {"open": day_open, "high": p["ltp"], "low": p["ltp"], "close": p["ltp"],
                    "volume": 1000, "ts": _micros(datetime.now(IST)) // 1000}
            out[f"{p['segment']}:{p['symbol']}"] = {
                "last_price": p["ltp"], "instrument_token": key, "prev_ohlc": dict(ohlc), "live_ohlc": ohlc,
            }
        return out

    def _quoted(self, query: dict) -> list[tuple[str, dict]]:
        raw = ",".join(query.get("instrument_key", []))
        keys = [key for key in raw.split(",") if key]
        if not keys:
            raise _Refusal(400, "UDAPI100038", "instrument_key is required", "instrument_key")
        if len(keys) > 500:
            raise _Refusal(400, "UDAPI100038", "At most 500 instrument keys", "instrument_key")
        return [(key, self._prices[key]) for key in keys if key in self._prices]

    def _live_gtt(self, gtt_id: Any) -> dict:
        gtt = self._gtts.get(_checked_id(gtt_id))
        if gtt is None or not any(rule["status"] in LIVE for rule in gtt["rules"]):
            raise _Refusal(400, self.unknown_gtt_code, "GTT order not found or not active", "gtt_order_id")
        return gtt

    def _rule(self, gtt_id: str, strategy: str) -> dict:
        gtt = self._gtts.get(gtt_id)
        if gtt is None:
            raise KeyError(f"no GTT {gtt_id}")
        for rule in gtt["rules"]:
            if rule["strategy"] == strategy:
                return rule
        raise KeyError(f"GTT {gtt_id} has no {strategy} rule")


# ----- validation, as documented ---------------------------------------------------------------


def _json_object(body: bytes) -> dict:
    try:
        obj = json.loads(body or b"null", parse_float=Decimal)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise _Refusal(400, "UDAPI100038", "Request body must be a JSON object")
    return obj


def _checked_id(gtt_id: Any) -> str:
    if not gtt_id:
        raise _Refusal(400, "UDAPI1134", "gtt_order_id is required", "gtt_order_id")
    if not isinstance(gtt_id, str) or not gtt_id.startswith("GTT-"):
        raise _Refusal(400, "UDAPI1135", "gtt_order_id must start with GTT-", "gtt_order_id")
    return gtt_id


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool) and value > 0


def _check_gtt(req: dict) -> tuple[str, int, list[dict]]:
    gtt_type = req.get("type")
    if gtt_type not in ("SINGLE", "MULTIPLE"):
        raise _Refusal(400, "UDAPI100038", "Invalid type", "type")
    quantity = req.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise _Refusal(400, "UDAPI100038", "Invalid quantity", "quantity")
    rules = req.get("rules")
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise _Refusal(400, "UDAPI100038", "rules must be a list of objects", "rules")
    if gtt_type == "SINGLE" and len(rules) != 1:
        raise _Refusal(400, "UDAPI100038", "A SINGLE GTT takes exactly one rule", "rules")
    if gtt_type == "MULTIPLE" and not 2 <= len(rules) <= 3:
        raise _Refusal(400, "UDAPI100038", "A MULTIPLE GTT takes two or three rules", "rules")
    strategies = [rule.get("strategy") for rule in rules]
    if any(s not in STRATEGIES for s in strategies) or len(set(strategies)) != len(strategies):
        raise _Refusal(400, "UDAPI100038", "Invalid or duplicate strategy", "rules")
    if "ENTRY" not in strategies:
        raise _Refusal(400, "UDAPI100038", "An ENTRY rule is mandatory", "rules")
    for rule in rules:
        allowed = ("ABOVE", "BELOW", "IMMEDIATE") if rule["strategy"] == "ENTRY" else ("IMMEDIATE",)
        if rule.get("trigger_type") not in allowed:
            raise _Refusal(400, "UDAPI100038", f"Invalid trigger_type for {rule['strategy']}", "rules")
        if not _positive_number(rule.get("trigger_price")):
            raise _Refusal(400, "UDAPI100038", "Invalid trigger_price", "rules")
        if rule.get("trailing_gap") is not None and (
                rule["strategy"] != "STOPLOSS" or not _positive_number(rule["trailing_gap"])):
            raise _Refusal(400, "UDAPI100038", "trailing_gap is only for a STOPLOSS rule", "rules")
    return gtt_type, quantity, rules


def _initial_status(strategy: str) -> str:
    return "SCHEDULED" if strategy == "ENTRY" else "INACTIVE"


def _stored_rules(rules: list[dict], side: str, old: dict[str, dict]) -> list[dict]:
    """Rules as the details API shows them: TARGET/STOPLOSS are the opposite side and wait in
    INACTIVE until the ENTRY fills; on modify each strategy keeps its current status."""
    exit_side = "SELL" if side == "BUY" else "BUY"
    stored = []
    for rule in rules:
        strategy = rule["strategy"]
        previous = old.get(strategy)
        out = {
            "strategy": strategy,
            "status": previous["status"] if previous else _initial_status(strategy),
            "message": None,
            "trigger_type": rule["trigger_type"],
            "trigger_price": rule["trigger_price"],
            "transaction_type": side if strategy == "ENTRY" else exit_side,
            "order_id": previous.get("order_id") if previous else None,
        }
        if rule.get("trailing_gap") is not None:
            out["trailing_gap"] = rule["trailing_gap"]
        stored.append(out)
    return stored


# ----- HTTP plumbing ---------------------------------------------------------------------------


class FakeHttpServer(ThreadingHTTPServer):
    """The HTTP server under each fake broker (this one and fake_kite.py)."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of new connections then overflows it and the
    # kernel has the client retry a second later, so a call would arrive a second after it
    # was sent and the fake would count calls bunched that were paced apart. A broker's
    # servers keep a deep backlog; so does this one.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose in fault tests; a traceback per test is noise


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's connection pool is exercised
    fake: FakeUpstox

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY, small header and body writes meet the client's delayed ACK
        # and every answer gains ~40 ms that Upstox would not add.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_GET

    def _serve(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        fake._record(self.command, parts.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        route = ROUTES.get((self.command, parts.path)) or _login_route(self.command, parts.path)
        if route is None:  # the code is invented: Upstox documents none for an unknown path
            self._send(_Answer(404, _json_bytes(error_envelope("UDAPI100060", "Resource not Found"))))
            return
        fault = fake._take_fault(route)
        answer = None
        if fault is not None and fault.kind in ("late", "held"):
            if (fake._sleep(4.0 if fault.seconds is None else fault.seconds) if fault.kind == "late"
                    else fake._hold(fault.seconds)):
                return self._drop()
            fault = None  # the work is done now, and answered to whoever still listens
        # A trickle is a slow real answer, so the work is always done first.
        if fault is None or fault.after_work or fault.kind == "trickle":
            if route in LOGIN_ROUTE_NAMES:
                answer = fake._login_answer(route, parts.path, parse_qs(parts.query), body)
            else:
                answer = fake._answer(route, self.headers, parse_qs(parts.query), body)
        if fake._sleep(fake.latency):
            return self._drop()
        if fault is None:
            self._send(answer)
        else:
            self._fail(fault, answer)

    def _fail(self, fault: _Fault, answer: _Answer | None) -> None:
        """Answer with `fault`; `answer` is the real answer when the work was done first."""
        kind = fault.kind
        # Without the work done, a cut-off body is cut from a stand-in; it never parses anyway.
        real = answer or _Answer(200, _json_bytes({"status": "success", "data": None}))
        if kind in ("hang", "timeout"):
            self.fake._sleep(10.0 if fault.seconds is None else fault.seconds)
            self._drop()
        elif kind == "refuse":
            self._drop()
        elif kind == "reset":
            self._send(real, cut=len(real.body) // 2)
        elif kind == "trickle":
            self._send(real, byte_delay=0.05 if fault.seconds is None else fault.seconds)
        elif kind == "502_html":
            page = b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
            self._send(_Answer(502, page, "text/html"))
        elif kind == "empty":
            self._send(_Answer(200, b""))
        elif kind == "truncated":
            self._send(_Answer(200, real.body[: len(real.body) // 2]))
        elif kind == "missing_fields":
            self._send(_Answer(200, _json_bytes({"status": "success", "metadata": {"latency": 3}})))
        else:
            status, code, message = {
                "500": (500, "UDAPI100500", "Something went wrong"),
                "429": (429, "UDAPI10005", "Too Many Request Sent"),
                "401": (401, "UDAPI100050", "Invalid token used to access API"),
                "error": (400, "UDAPI100038", "Invalid input"),
            }[kind]
            status = fault.status or status
            envelope = error_envelope(fault.code or code, fault.message or message)
            self._send(_Answer(status, _json_bytes(envelope)))

    def _send(self, answer: _Answer, *, cut: int | None = None, byte_delay: float = 0.0) -> None:
        """Write one answer. `cut` sends only that many body bytes, then closes (a reset);
        `byte_delay` sends the body one byte at a time."""
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in (answer.headers or {}).items():
                self.send_header(name, value)
            if cut is not None:
                self.end_headers()
                self.wfile.write(answer.body[:cut])
                return self._drop()
            if byte_delay:
                self.end_headers()
                for i in range(len(answer.body)):
                    self.wfile.write(answer.body[i : i + 1])
                    if self.fake._sleep(byte_delay):
                        return self._drop()
            else:
                self.end_headers()
                self.wfile.write(answer.body)
        except OSError:
            self._drop()

    def _drop(self) -> None:
        """Close the connection with no (further) answer."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
