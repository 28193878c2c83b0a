"""A fake Kite Connect v3 HTTP server, written from Kite's public GTT page and API notes, for tests.

A real `ThreadingHTTPServer` on 127.0.0.1 (a free port), like fake_upstox.py. It is checked with
the official `kiteconnect` client (tests/integration/test_kite_fake_server.py): every route
faked here works from it.

    with FakeKite() as kite:
        broker = KiteBroker(kite.url, kite.api_key, kite.access_token, timeout=1, pacer=None, quote_pacer=None)

Routes::

    POST   /session/token            form api_key, request_token, checksum=sha256(key+token+secret)
    GET    /instruments[/<EXCHANGE>] the instruments CSV (no login needed)
    GET    /quote/ltp?i=EX:SYM&...   {"EX:SYM": {"instrument_token", "last_price"}}
    GET    /quote/ohlc?i=...         the same plus "ohlc": {open, high, low, close}
    POST   /gtt/triggers             form type, condition (JSON), orders (JSON) -> {"trigger_id"}
    GET    /gtt/triggers             every GTT
    GET    /gtt/triggers/<id>        one GTT (400 InputException when unknown)
    PUT    /gtt/triggers/<id>        a full replacement of an active GTT
    DELETE /gtt/triggers/<id>        status -> deleted
    GET    /orders/<order_id>        the order's history, latest last

Behaviour from the documentation:
- Every call but the session exchange and the CSV needs `Authorization: token api_key:access_token`
  with a token this fake issued (or `access_token`); else 403 TokenException.
- Answers are `{"status": "success", "data": ...}`; errors `{"status": "error", "message",
  "error_type", "data": null}` with the HTTP status.
- Place/modify validate as the page says: `single` takes one trigger value and one order,
  `two-leg` two of each with [lower, upper] around `last_price`; orders are LIMIT, on the
  condition's instrument, with a positive quantity and price; products CNC and NRML (MIS is an
  InputException); the instrument must be in the CSV.
- Timestamps are IST "YYYY-MM-DD HH:MM:SS"; ids are integers.

Test API: `set_price(key, ltp, open=None)`; `fire(gtt_id, leg=0, order_status="COMPLETE",
rejection_reason=None)` triggers a GTT (its order gets an order id and a history ending in
`order_status`); `set_status(gtt_id, status)`; `gtt(id)`, `gtts()`; `calls` (method, path) and
`calls_to(method, path_prefix)`; `inject(route, fault, times=1, after_work=False)` where route
is "METHOD /path-prefix" or "*" and fault one of "429", "network", "500", "general", "html",
"token", "drop"; `request_tokens` (request token -> user) the session exchange accepts.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.fake_upstox import FakeHttpServer

IST = timezone(timedelta(hours=5, minutes=30))
COLUMNS = ("instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry", "strike",
           "tick_size", "lot_size", "instrument_type", "segment", "exchange")

# A small instruments file: equities, the issue's option and future examples, and an index.
DEFAULT_INSTRUMENTS = [
    ("408065", "1594", "INFY", "INFOSYS", "0", "", "0", "0.05", "1", "EQ", "NSE", "NSE"),
    ("3677697", "14366", "IDEA", "VODAFONE IDEA", "0", "", "0", "0.01", "1", "EQ", "NSE", "NSE"),
    ("256265", "1001", "NIFTY 50", "NIFTY 50", "0", "", "0", "0", "0", "EQ", "INDICES", "NSE"),
    ("12345601", "48001", "NIFTY26DEC24500CE", "NIFTY", "0", "2026-12-29", "24500", "0.05", "75", "CE",
     "NFO-OPT", "NFO"),
    ("12345602", "48002", "NIFTY26D2224000CE", "NIFTY", "0", "2026-12-22", "24000", "0.05", "75", "CE",
     "NFO-OPT", "NFO"),
    ("12345603", "48003", "NIFTY26DECFUT", "NIFTY", "0", "2026-12-29", "0", "0.1", "75", "FUT", "NFO-FUT", "NFO"),
    ("12345604", "48004", "CRUDEOIL26DECFUT", "CRUDEOIL", "0", "2026-12-17", "0", "1", "100", "FUT", "MCX-FUT",
     "MCX"),
]


@dataclass
class _Fault:
    kind: str
    after_work: bool


class _Refusal(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _ist_now() -> str:
    return datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")


class FakeKite:
    def __init__(self, *, api_key: str = "fake-api-key", api_secret: str = "fake-api-secret",
                 access_token: str = "fake-access-token") -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.access_token = access_token
        self.instruments = [dict(zip(COLUMNS, row)) for row in DEFAULT_INSTRUMENTS]
        self.request_tokens: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self._issued: set[str] = set()
        self._prices: dict[str, dict] = {}
        self._gtts: dict[int, dict] = {}
        self._orders: dict[str, list[dict]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._ids = itertools.count(100001)
        self._order_ids = itertools.count(250000000000001)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeKite:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = FakeHttpServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kite", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeKite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- the test API ---------------------------------------------------------------------------

    def set_price(self, key: str, ltp: Any, open: Any = None) -> None:  # noqa: A002
        with self._lock:
            self._prices[key] = {"last_price": float(ltp), "open": float(open) if open is not None else 0.0}

    def gtt(self, gtt_id: Any) -> dict | None:
        with self._lock:
            found = self._gtts.get(int(gtt_id))
            return json.loads(json.dumps(found)) if found else None

    def gtts(self) -> list[dict]:
        with self._lock:
            return [json.loads(json.dumps(g)) for g in self._gtts.values()]

    def set_status(self, gtt_id: Any, status: str) -> None:
        with self._lock:
            gtt = self._gtts[int(gtt_id)]
            gtt["status"], gtt["updated_at"] = status, _ist_now()

    def fire(self, gtt_id: Any, leg: int = 0, order_status: str = "COMPLETE",
             rejection_reason: str | None = None) -> str:
        """The trigger fires: leg `leg`'s order is placed; its history ends in `order_status`.
        A GTT whose order Kite could not place at all (order_status "FAILED") has no order id."""
        with self._lock:
            gtt = self._gtts[int(gtt_id)]
            order = gtt["orders"][leg]
            order_id = "" if order_status == "FAILED" else str(next(self._order_ids))
            now = _ist_now()
            order["result"] = {
                "account_id": "XX0000", "exchange": order["exchange"], "tradingsymbol": order["tradingsymbol"],
                "validity": "DAY", "product": order["product"], "order_type": "LIMIT",
                "transaction_type": order["transaction_type"], "quantity": order["quantity"],
                "price": order["price"], "meta": json.dumps({"app_id": 1, "gtt": gtt["id"]}), "timestamp": now,
                "triggered_at": gtt["condition"]["trigger_values"][leg],
                "order_result": {"status": "failed" if order_status == "FAILED" else "success",
                                 "order_id": order_id, "rejection_reason": rejection_reason or ""},
            }
            gtt["status"], gtt["updated_at"] = "triggered", now
            if order_id:
                base = {"order_id": order_id, "exchange": order["exchange"], "tradingsymbol": order["tradingsymbol"],
                        "transaction_type": order["transaction_type"], "quantity": order["quantity"],
                        "price": order["price"], "order_type": "LIMIT", "product": order["product"]}
                history = [dict(base, status="OPEN PENDING", status_message=None, order_timestamp=now),
                           dict(base, status=order_status, order_timestamp=now,
                                status_message=rejection_reason if order_status == "REJECTED" else None)]
                self._orders[order_id] = history
            return order_id

    def inject(self, route: str, fault: str, times: int = 1, *, after_work: bool = False) -> None:
        with self._lock:
            self._faults.setdefault(route, []).extend(_Fault(fault, after_work) for _ in range(times))

    def calls_to(self, method: str, prefix: str) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] == method and c[1].startswith(prefix)]

    def issue_request_token(self, user_id: str = "XX0000") -> str:
        token = f"rt-{next(self._ids)}"
        self.request_tokens[token] = {"user_id": user_id, "user_name": "Fake Trader"}
        return token

    # -- the work -------------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for route, faults in self._faults.items():
                if faults and (route == "*" or f"{method} {path}".startswith(route)):
                    return faults.pop(0)
        return None

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("token "):
            return False
        api_key, _, token = header[len("token "):].partition(":")
        return api_key == self.api_key and (token == self.access_token or token in self._issued)

    def answer(self, method: str, path: str, query: dict, form: dict, auth: str | None) -> tuple[int, str, bytes]:
        """(status, content type, body) of one call."""
        try:
            if method == "POST" and path == "/session/token":
                return _ok(self._session(form))
            if method == "GET" and (path == "/instruments" or path.startswith("/instruments/")):
                return 200, "text/csv", self._csv(path.removeprefix("/instruments").strip("/"))
            if not self._authorised(auth):
                raise _Refusal(403, "TokenException", "Incorrect `api_key` or `access_token`.")
            with self._lock:
                return _ok(self._route(method, path, query, form))
        except _Refusal as refusal:
            return refusal.status, "application/json", _envelope(refusal.error_type, refusal.message)

    def _route(self, method: str, path: str, query: dict, form: dict) -> Any:
        parts = path.strip("/").split("/")
        if parts[:2] == ["quote", "ltp"] and method == "GET":
            return self._quotes(query, ohlc=False)
        if parts[:2] == ["quote", "ohlc"] and method == "GET":
            return self._quotes(query, ohlc=True)
        if parts[:2] == ["gtt", "triggers"]:
            if len(parts) == 2 and method == "POST":
                gtt = self._new_gtt(form)
                self._gtts[gtt["id"]] = gtt
                return {"trigger_id": gtt["id"]}
            if len(parts) == 2 and method == "GET":
                return list(self._gtts.values())
            if len(parts) == 3:
                gtt = self._known(parts[2])
                if method == "GET":
                    return gtt
                if method == "PUT":
                    if gtt["status"] != "active":
                        raise _Refusal(400, "InputException", "Only active GTTs can be modified.")
                    new = self._new_gtt(form, keep=gtt)
                    self._gtts[gtt["id"]] = new
                    return {"trigger_id": gtt["id"]}
                if method == "DELETE":
                    if gtt["status"] != "active":
                        raise _Refusal(400, "InputException", "Only active GTTs can be deleted.")
                    gtt["status"], gtt["updated_at"] = "deleted", _ist_now()
                    return {"trigger_id": gtt["id"]}
        if parts[0] == "orders" and len(parts) == 2 and method == "GET":
            history = self._orders.get(parts[1])
            if history is None:
                raise _Refusal(400, "OrderException", "Couldn't find that order.")
            return history
        raise _Refusal(404, "GeneralException", "Route not found")

    def _session(self, form: dict) -> dict:
        api_key, request_token, checksum = (form.get(k, "") for k in ("api_key", "request_token", "checksum"))
        expected = hashlib.sha256((api_key + request_token + self.api_secret).encode()).hexdigest()
        if api_key != self.api_key or checksum != expected:
            raise _Refusal(403, "TokenException", "Invalid `checksum`.")
        user = self.request_tokens.pop(request_token, None)
        if user is None:
            raise _Refusal(403, "TokenException", "Token is invalid or has expired.")
        token = f"at-{next(self._ids)}"
        self._issued.add(token)
        return {**user, "access_token": token, "public_token": "pt", "login_time": _ist_now(),
                "user_type": "individual", "email": "trader@example.com", "broker": "ZERODHA",
                "exchanges": ["NSE", "NFO"], "products": ["CNC", "NRML", "MIS"], "order_types": ["LIMIT"],
                "api_key": api_key, "refresh_token": "", "enctoken": "", "avatar_url": None, "meta": {}}

    def _csv(self, exchange: str) -> bytes:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r for r in self.instruments if not exchange or r["exchange"] == exchange)
        return out.getvalue().encode()

    def _instrument(self, key: str) -> dict | None:
        exchange, _, symbol = key.partition(":")
        return next((r for r in self.instruments if r["exchange"] == exchange and r["tradingsymbol"] == symbol), None)

    def _quotes(self, query: dict, ohlc: bool) -> dict:
        data = {}
        for key in query.get("i", []):
            price, row = self._prices.get(key), self._instrument(key)
            if price is None or row is None:
                continue
            item = {"instrument_token": int(row["instrument_token"]), "last_price": price["last_price"]}
            if ohlc:
                item["ohlc"] = {"open": price["open"], "high": price["last_price"], "low": price["last_price"],
                                "close": price["last_price"]}
            data[key] = item
        return data

    def _known(self, raw_id: str) -> dict:
        try:
            gtt = self._gtts.get(int(raw_id))
        except ValueError:
            gtt = None
        if gtt is None:
            raise _Refusal(400, "InputException", "Invalid trigger ID.")
        return gtt

    def _new_gtt(self, form: dict, keep: dict | None = None) -> dict:
        kind = form.get("type")
        try:
            condition = json.loads(form.get("condition") or "")
            orders = json.loads(form.get("orders") or "")
        except ValueError:
            raise _Refusal(400, "InputException", "Invalid `condition` or `orders`.") from None
        if kind not in ("single", "two-leg"):
            raise _Refusal(400, "InputException", "Invalid `type`.")
        if not isinstance(condition, dict) or not isinstance(orders, list):
            raise _Refusal(400, "InputException", "Invalid `condition` or `orders`.")
        key = f"{condition.get('exchange')}:{condition.get('tradingsymbol')}"
        row = self._instrument(key)
        if row is None:
            raise _Refusal(400, "InputException", "Invalid `tradingsymbol`.")
        triggers, last = condition.get("trigger_values"), condition.get("last_price")
        want = 1 if kind == "single" else 2
        if not isinstance(triggers, list) or len(triggers) != want or len(orders) != want:
            raise _Refusal(400, "InputException", f"A {kind} GTT needs {want} trigger value(s) and order(s).")
        if not isinstance(last, (int, float)) or last <= 0 or not all(
                isinstance(t, (int, float)) and t > 0 for t in triggers):
            raise _Refusal(400, "InputException", "Invalid `trigger_values` or `last_price`.")
        if kind == "two-leg" and not triggers[0] < last < triggers[1]:
            raise _Refusal(400, "InputException", "Trigger values must be on either side of the last price.")
        for order in orders:
            if (order.get("exchange"), order.get("tradingsymbol")) != (condition["exchange"], condition["tradingsymbol"]):
                raise _Refusal(400, "InputException", "Order instrument does not match the condition.")
            if order.get("order_type") != "LIMIT":
                raise _Refusal(400, "InputException", "Only LIMIT orders are allowed.")
            if order.get("product") not in ("CNC", "NRML"):
                raise _Refusal(400, "InputException", "Invalid product: GTT supports CNC and NRML.")
            if order.get("transaction_type") not in ("BUY", "SELL"):
                raise _Refusal(400, "InputException", "Invalid `transaction_type`.")
            quantity, price = order.get("quantity"), order.get("price")
            if not isinstance(quantity, int) or quantity <= 0 or not isinstance(price, (int, float)) or price <= 0:
                raise _Refusal(400, "InputException", "Invalid `quantity` or `price`.")
            if quantity % int(row["lot_size"] or 1):
                raise _Refusal(400, "InputException", "Quantity should be a multiple of the lot size.")
        now = _ist_now()
        gtt_id = keep["id"] if keep else next(self._ids)
        return {
            "id": gtt_id, "user_id": "XX0000", "parent_trigger": None, "type": kind,
            "created_at": keep["created_at"] if keep else now, "updated_at": now,
            "expires_at": (datetime.now(IST) + timedelta(days=365)).strftime("%Y-%m-%d %H:%M:%S"),
            "status": "active",
            "condition": {**condition, "instrument_token": int(row["instrument_token"])},
            "orders": [{**order, "result": None} for order in orders],
            "meta": {},
        }


def _ok(data: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"status": "success", "data": data}).encode()


def _envelope(error_type: str, message: str) -> bytes:
    return json.dumps({"status": "error", "message": message, "error_type": error_type, "data": None}).encode()


_FAULTS = {
    "429": (429, "NetworkException", "Too many requests"),
    "network": (503, "NetworkException", "Couldn't reach the OMS"),
    "500": (500, "GeneralException", "Something went wrong"),
    "general": (500, "GeneralException", "Unknown error"),
    "token": (403, "TokenException", "Incorrect `api_key` or `access_token`."),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeKite

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        with fake._lock:
            fake.calls.append((self.command, parts.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        fault = fake._take_fault(self.command, parts.path)
        answer = None
        if fault is None or fault.after_work:
            answer = fake.answer(self.command, parts.path, parse_qs(parts.query), form,
                                 self.headers.get("Authorization"))
        if fault is None:
            return self._send(*answer)
        if fault.kind == "drop":  # the work may be done; the answer never comes
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if fault.kind == "html":
            return self._send(502, "text/html", b"<html><body>502 Bad Gateway</body></html>")
        status, error_type, message = _FAULTS[fault.kind]
        return self._send(status, "application/json", _envelope(error_type, message))

    do_POST = do_PUT = do_DELETE = do_GET

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
