"""Logging in to Upstox for the day's access token. Pure of Flask.

Two ways, both ending with the token encrypted in `upstox_tokens` (services/tokens.py):

- The authorization-code flow (browser, or `python run.py login`): `begin()` stores a one-time
  `state` (only its SHA-256 hash, valid STATE_TTL, single use) and returns Upstox's
  authorization-dialog URL; Upstox redirects to UPSTOX_REDIRECT_URI with `code` and `state`;
  `complete(code, state)` consumes the state and exchanges the code at
  `POST /v2/login/authorization/token` (form-encoded; the answer is a flat object with
  `access_token`, `user_id`, `user_name`, ...; a bad code is an error envelope, UDAPI100057).
- The access-token request (approve in the Upstox app): `request_app_token()` calls
  `POST /v3/login/auth/token/request/{client_id}` with `{"client_secret": ...}`; once the user
  approves, Upstox POSTs `{"client_id", "user_id", "access_token", "token_type": "Bearer",
  "issued_at", "expires_at" (epoch ms strings), "message_type": "access_token"}` to the notifier
  URL configured on the Upstox app, which is this service's `/upstox/notifier/<secret>`;
  `accept_notification(payload)` stores it. Field shapes are read tolerantly (ms or seconds,
  strings or numbers, ISO text).

A token expires at the next 03:30 IST after it was issued.
"""
from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import queue
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import requests
from sqlalchemy import delete, update

from openalgo_gtt.brokers.base import BrokerCall, BrokerCallObserver
from openalgo_gtt.domain.clock import ist_text
from openalgo_gtt.services.audit import observe_broker_call
from openalgo_gtt.services.tokens import (
    TokenProvider,
    as_utc,
    next_expiry,
    notifier_secret,
    secrets_match,
)

log = logging.getLogger(__name__)

DIALOG_PATH = "/v2/login/authorization/dialog"
TOKEN_PATH = "/v2/login/authorization/token"
TOKEN_REQUEST_PATH = "/v3/login/auth/token/request/{client_id}"
NOTIFIER_PREFIX = "/upstox/notifier/"
STATE_TTL = timedelta(minutes=10)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
START_AGAIN = "start the login again at /upstox/login or with python run.py login"


class LoginError(Exception):
    """A login step failed; `status` is the HTTP status to answer with, `code` Upstox's error code."""

    def __init__(self, message: str, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class LoginConfig:
    api_url: str = "https://api.upstox.com"
    api_key: str | None = None  # Upstox's client_id
    api_secret: str | None = field(default=None, repr=False)  # Upstox's client_secret
    redirect_uri: str | None = None
    timeout: float = 5.0
    state_ttl: timedelta = STATE_TTL

    @classmethod
    def from_settings(cls, settings) -> LoginConfig:
        return cls(
            api_url=settings.upstox_api_url.rstrip("/"),
            api_key=getattr(settings, "upstox_api_key", None) or None,
            api_secret=getattr(settings, "upstox_api_secret", None) or None,
            redirect_uri=getattr(settings, "upstox_redirect_uri", None) or None,
            timeout=settings.upstox_timeout,
        )

    def require(self, *, redirect: bool) -> None:
        missing = [name for name, value in (("UPSTOX_API_KEY", self.api_key), ("UPSTOX_API_SECRET", self.api_secret),
                                            ("UPSTOX_REDIRECT_URI", self.redirect_uri if redirect else "-"))
                   if not value]
        if missing:
            raise LoginError(f"Upstox login is not configured: set {', '.join(missing)}", status=503)


@dataclass(frozen=True)
class LoginResult:
    user_id: str | None
    user_name: str | None
    source: str  # "login" | "notifier"
    issued_at: datetime
    expires_at: datetime
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        body: dict[str, Any] = {
            "user_id": self.user_id,
            "user_name": self.user_name,
            "token_source": "login",
            "token_expires_at": ist_text(self.expires_at),
        }
        if self.warnings:
            body["warnings"] = list(self.warnings)
        return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class AppTokenRequest:
    authorization_expiry: datetime | None  # approve before this
    notifier_url: str | None  # where Upstox will deliver the token (set on the Upstox app)

    def as_dict(self) -> dict:
        return {"authorization_expiry": ist_text(self.authorization_expiry) or None, "notifier_url": self.notifier_url}


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


class UpstoxLogin:
    """The login use cases; `tokens` supplies the store and the (injectable) clock."""

    def __init__(self, config: LoginConfig, tokens: TokenProvider, *, pepper: str,
                 observer: BrokerCallObserver | None = observe_broker_call,
                 http: Callable[..., requests.Response] | None = None) -> None:
        self.config = config
        self.tokens = tokens
        self.store = tokens.store
        self._sessions = tokens.store.sessions
        self._observer = observer
        self._http = http or requests.request
        self._notifier_secret = notifier_secret(pepper)

    @classmethod
    def from_settings(cls, settings, tokens: TokenProvider) -> UpstoxLogin:
        return cls(LoginConfig.from_settings(settings), tokens, pepper=settings.api_key_pepper)

    def _now(self) -> datetime:
        return as_utc(self.tokens.now())

    # ----- the authorization-code flow -----------------------------------------------------

    def begin(self) -> tuple[str, str]:
        """(Upstox's authorization-dialog URL, the one-time state in it)."""
        # Imported where used, as in tokens.py: the pure helpers here register no tables.
        from openalgo_gtt.store.login_models import LoginState

        self.config.require(redirect=True)
        state = secrets.token_urlsafe(32)
        now = self._now()
        with self._sessions.begin() as session:
            session.execute(delete(LoginState).where(LoginState.expires_at < now - timedelta(days=1)))
            session.add(LoginState(state_hash=state_hash(state), created_at=now,
                                   expires_at=now + self.config.state_ttl, used_at=None))
        query = urlencode({"response_type": "code", "client_id": self.config.api_key,
                           "redirect_uri": self.config.redirect_uri, "state": state})
        return f"{self.config.api_url}{DIALOG_PATH}?{query}", state

    def consume_state(self, state: str | None) -> None:
        """Mark `state` used, atomically; LoginError (400) when unknown, used or expired."""
        from openalgo_gtt.store.login_models import LoginState

        if not state:
            raise LoginError(f"The callback carries no state: {START_AGAIN}")
        digest, now = state_hash(state), self._now()
        with self._sessions.begin() as session:
            taken = session.execute(
                update(LoginState)
                .where(LoginState.state_hash == digest, LoginState.used_at.is_(None), LoginState.expires_at > now)
                .values(used_at=now)
            ).rowcount
            row = None if taken == 1 else session.get(LoginState, digest)
        if taken == 1:
            return
        if row is None:
            raise LoginError(f"Unknown login state: {START_AGAIN}")
        if row.used_at is not None:
            raise LoginError(f"This login was already used (a state is single use): {START_AGAIN}")
        minutes = int(self.config.state_ttl.total_seconds() // 60)
        raise LoginError(f"The login took longer than {minutes} minutes and its state expired: {START_AGAIN}")

    def complete(self, code: str | None, state: str | None) -> LoginResult:
        """The callback: consume the state, then exchange the code and store the token."""
        self.config.require(redirect=True)
        self.consume_state(state)
        if not code:
            raise LoginError(f"Upstox sent no authorization code (was the login cancelled?): {START_AGAIN}")
        return self.exchange(code)

    def exchange(self, code: str) -> LoginResult:
        form = {"code": code, "client_id": self.config.api_key, "client_secret": self.config.api_secret,
                "redirect_uri": self.config.redirect_uri, "grant_type": "authorization_code"}
        status, payload = self._call("POST", TOKEN_PATH, TOKEN_PATH, data=form)
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not (200 <= status < 300 and isinstance(token, str) and token.strip()):
            raise _refusal(status, payload, "Upstox refused the login")
        issued = self._now()
        return self._store(token.strip(), payload.get("user_id"), payload.get("user_name"), "login",
                           issued, next_expiry(issued))

    # ----- the access-token request (approve in the Upstox app) -----------------------------

    @property
    def notifier_path(self) -> str:
        """This service's notifier webhook path; set `<public base URL><path>` on the Upstox app."""
        return NOTIFIER_PREFIX + self._notifier_secret

    def verify_notifier_secret(self, candidate: str) -> bool:
        return secrets_match(candidate, self._notifier_secret)

    def request_app_token(self) -> AppTokenRequest:
        self.config.require(redirect=False)
        path = TOKEN_REQUEST_PATH.format(client_id=quote(self.config.api_key or "", safe=""))
        status, payload = self._call("POST", path, TOKEN_REQUEST_PATH, json_body={"client_secret": self.config.api_secret})
        data = payload.get("data") if isinstance(payload, dict) else None
        if not (200 <= status < 300 and isinstance(data, dict) and payload.get("status") == "success"):
            raise _refusal(status, payload, "Upstox refused the access-token request")
        notifier = data.get("notifier_url")
        return AppTokenRequest(_moment(data.get("authorization_expiry")), notifier if isinstance(notifier, str) else None)

    def accept_notification(self, payload: dict) -> LoginResult:
        """Store the token Upstox POSTed to the notifier webhook (the URL secret is checked by the caller)."""
        kind = payload.get("message_type")
        if kind is not None and kind != "access_token":
            raise LoginError(f"Not an access-token notification (message_type={kind!r})")
        client_id = payload.get("client_id")
        if client_id is not None and self.config.api_key and str(client_id) != self.config.api_key:
            raise LoginError("The notification's client_id is not this service's UPSTOX_API_KEY")
        token_type = payload.get("token_type")
        if token_type is not None and str(token_type).lower() != "bearer":
            raise LoginError(f"Unsupported token_type {token_type!r}")
        token = payload.get("access_token")
        if not isinstance(token, str) or not token.strip():
            raise LoginError("The notification carries no access_token")
        now = self._now()
        issued = _moment(payload.get("issued_at")) or now
        expires = _moment(payload.get("expires_at")) or next_expiry(issued)
        return self._store(token.strip(), payload.get("user_id"), payload.get("user_name"), "notifier",
                           issued, expires)

    # ----- internals -----------------------------------------------------------------------

    def _store(self, token: str, user_id: Any, user_name: Any, source: str, issued: datetime,
               expires: datetime) -> LoginResult:
        user = str(user_id)[:64] if user_id not in (None, "") else None
        self.store.save(token, user_id=user, source=source, issued_at=issued, expires_at=expires)
        warnings = []
        if self.tokens.configured_source:
            where = "keys.json" if self.tokens.configured_source == "keys.json" else "ACCESS_TOKEN"
            warnings.append(f"The login is stored, but the access token from {where} takes precedence: "
                            f"remove it and restart to use this login")
        log.info("Upstox login stored for user %s (via %s), valid until %s IST", user, source, ist_text(expires))
        return LoginResult(user, str(user_name) if user_name else None, source, as_utc(issued), as_utc(expires),
                           tuple(warnings))

    def _call(self, method: str, path: str, reported_path: str, *, data: dict | None = None,
              json_body: dict | None = None) -> tuple[int, Any]:
        """One HTTP call to Upstox: (status, decoded JSON or None). Reported to the audit observer."""
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = self._http(method, self.config.api_url + path, data=data, json=json_body,
                                  headers={"Accept": "application/json"}, allow_redirects=False,
                                  timeout=(self.config.timeout, self.config.timeout))
            status = response.status_code
            try:
                payload = json.loads(response.content.decode("utf-8"), parse_float=Decimal)
            except (UnicodeDecodeError, ValueError):
                payload = None
            if status >= 400:
                code, message = _error_of(payload)
                error = f"HTTP {status} {code or ''} {message or ''}".strip()
            return status, payload
        except requests.Timeout as exc:
            error = f"timeout: {exc}"
            raise LoginError("Upstox did not answer in time; try again", status=504) from exc
        except requests.RequestException as exc:
            error = f"connection failed: {exc}"
            raise LoginError(f"Upstox could not be reached: {type(exc).__name__}", status=502) from exc
        finally:
            if self._observer is not None:
                try:
                    self._observer(BrokerCall(method, reported_path, status, (time.monotonic() - started) * 1000.0,
                                              error))
                except Exception:  # the audit hook never turns an answer into a failure
                    log.exception("broker call observer failed")


def _error_of(payload: Any) -> tuple[str | None, str | None]:
    """Upstox's first error code and message (either spelling), or (None, None)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("errors"), list) or not payload["errors"]:
        return None, None
    first = payload["errors"][0]
    if not isinstance(first, dict):
        return None, None
    code = first.get("error_code") or first.get("errorCode")
    message = first.get("message")
    return (str(code) if code else None), (str(message) if message else None)


def _refusal(status: int, payload: Any, what: str) -> LoginError:
    code, message = _error_of(payload)
    detail = message or f"HTTP {status}"
    text = f"{what}: {detail}" + (f" ({code})" if code else "")
    # Upstox refused what we sent (a bad or used code, wrong credentials): 400. It broke: 502.
    return LoginError(text, status=400 if 400 <= status < 500 else 502, code=code)


def _moment(value: Any) -> datetime | None:
    """An instant from epoch milliseconds or seconds (number or digit string) or ISO-8601 text."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        if isinstance(value, (int, float, Decimal)) or (isinstance(value, str) and value.strip().isdigit()):
            number = float(value)
            seconds = number / 1000.0 if number > 1e11 else number
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        if isinstance(value, str):
            return as_utc(datetime.fromisoformat(value.strip()))  # 3.11 reads a trailing Z
    except (ValueError, OverflowError, OSError):
        return None
    return None


# ----- python run.py login -------------------------------------------------------------------


def run_login(gateway, *, echo: Callable[[str], Any], prompt: Callable[[str], str], via_app: bool = False,
              listen: bool = True, timeout: float = 300.0, poll_interval: float = 0.5,
              service: UpstoxLogin | None = None) -> LoginResult:
    """Log in from a terminal and store the token; LoginError when it fails or times out.

    Browser flow: prints the authorization URL, then takes whichever comes first: Upstox's
    redirect to a one-shot listener on the redirect URI's port (when the URI is on this machine
    and the port is free), the redirect URL pasted at the prompt, or a login completed by the
    running server (when it owns the redirect URI) appearing in the database.
    `via_app`: asks Upstox to send an approval request to the Upstox app instead, then waits
    for the running server's notifier webhook to store the token.
    """
    login = service or getattr(gateway, "upstox_login", None)
    if login is None:
        login = UpstoxLogin.from_settings(gateway.settings, TokenProvider.from_settings(gateway.settings,
                                                                                         gateway.sessions))
    before = login.store.latest_id()
    if via_app:
        return _login_via_app(login, echo, before, timeout, poll_interval)

    url, state = login.begin()
    results: queue.Queue = queue.Queue()
    # Bind the listener before printing the address: a browser that is already logged in to
    # Upstox redirects within milliseconds, and a port not yet listening refuses the redirect.
    listener = _start_listener(login, results, echo) if listen else None
    try:
        echo("Open this address in a browser and log in to Upstox:")
        echo(url)
        if listener is not None:
            echo(f"Waiting for Upstox to redirect to {login.config.redirect_uri} ...")
            question = "...or paste the address your browser was sent to"
        else:
            question = "After logging in, paste the address your browser was sent to (it contains ?code=)"
        _ask(prompt, question, results)
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, value = results.get(timeout=poll_interval)
            except queue.Empty:
                result = _stored_since(login, before)
                if result is not None:  # the running server received the redirect
                    echo("")  # end the pending prompt's line
                    return _finish(echo, result)
                if time.monotonic() > deadline:
                    raise LoginError(f"No login within {int(timeout)} seconds: run python run.py login again",
                                     status=504) from None
                continue
            if kind == "listener":
                echo("")  # end the pending prompt's line
                if isinstance(value, LoginError):
                    raise value
                return _finish(echo, value)
            if kind == "eof":
                if listener is None:
                    raise LoginError("No redirect address given")
                continue  # keep waiting for the listener
            code, pasted_state = _code_and_state(value)
            if not code:
                echo("That has no ?code= in it; paste the whole address from the browser's address bar.")
                _ask(prompt, question, results)
                continue
            return _finish(echo, login.complete(code, pasted_state or state))
    finally:
        if listener is not None:
            listener.close()


def stdin_prompt(question: str) -> str:
    """The terminal prompt for run_login: one line from standard input, EOFError at its end.

    run_login reads in a daemon thread while it also waits for the redirect; reading the file
    descriptor directly (not through sys.stdin's buffer) means a thread still waiting there when
    the login completes does not block or crash the interpreter's shutdown.
    """
    sys.stdout.write(f"{question}: ")
    sys.stdout.flush()
    data = b""
    fd = sys.stdin.fileno()
    while b"\n" not in data:
        chunk = os.read(fd, 4096)
        if not chunk:
            if not data:
                raise EOFError
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _login_via_app(login: UpstoxLogin, echo, before: int | None, timeout: float, poll_interval: float) -> LoginResult:
    request = login.request_app_token()
    until = f" before {ist_text(request.authorization_expiry)} IST" if request.authorization_expiry else ""
    echo(f"Upstox sent an access-token request to your Upstox app: approve it there{until}.")
    if request.notifier_url:
        echo(f"Upstox will deliver the token to {request.notifier_url}")
    if not (request.notifier_url or "").rstrip("/").endswith(login.notifier_path):
        echo(f"This service receives tokens at <its public address>{login.notifier_path}: set that as the "
             "notifier URL of your Upstox app, and keep the server running and reachable there.")
    echo("Waiting for the token ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() <= deadline:
        result = _stored_since(login, before)
        if result is not None:
            return _finish(echo, result)
        time.sleep(poll_interval)
    raise LoginError(f"No token arrived within {int(timeout)} seconds", status=504)


def _finish(echo, result: LoginResult) -> LoginResult:
    who = f" as {result.user_id}" if result.user_id else ""
    echo(f"Logged in to Upstox{who}; the access token is valid until {ist_text(result.expires_at)} IST.")
    for warning in result.warnings:
        echo(f"warning: {warning}")
    return result


def _stored_since(login: UpstoxLogin, before: int | None) -> LoginResult | None:
    if login.store.latest_id() == before:
        return None
    stored = login.store.latest()
    if stored is None:
        return None
    warnings = ()
    if login.tokens.configured_source:
        warnings = (f"the access token from {login.tokens.configured_source} takes precedence over this login",)
    return LoginResult(stored.user_id, None, stored.source, stored.issued_at, stored.expires_at, warnings)


def _ask(prompt, question: str, results: queue.Queue) -> None:
    """Read one line in a daemon thread, so the listener and the database can win meanwhile."""

    def read() -> None:
        try:
            answer = prompt(question)
        except Exception:  # noqa: BLE001 - EOFError, or click's Abort at the end of input
            results.put(("eof", None))
            return
        results.put(("paste", answer or ""))

    threading.Thread(target=read, name="login-prompt", daemon=True).start()


def _code_and_state(text: str) -> tuple[str | None, str | None]:
    text = (text or "").strip()
    if not text:
        return None, None
    if "://" in text or text.startswith("/") or "?" in text:
        query = urlsplit(text).query if "?" in text else ""
    elif "=" in text:
        query = text
    else:
        return text, None  # a bare code
    values = parse_qs(query)
    return (values.get("code") or [None])[0], (values.get("state") or [None])[0]


class _Listener:
    def __init__(self, server: HTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="login-listener", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _start_listener(login: UpstoxLogin, results: queue.Queue, echo) -> _Listener | None:
    """A one-shot HTTP listener on the redirect URI's port, when that URI is on this machine."""
    parts = urlsplit(login.config.redirect_uri or "")
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host not in LOCAL_HOSTS:
        return None
    port = parts.port or 80
    expected_path = parts.path or "/"
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            here = urlsplit(self.path)
            query = parse_qs(here.query)
            if here.path.rstrip("/") != expected_path.rstrip("/") or not ({"code", "state", "error"} & query.keys()):
                return self._page(404, "Not found", "Waiting for Upstox's redirect.")
            if done.is_set():
                return self._page(409, "Already handled", "This login was already handled; see the terminal.")
            done.set()
            try:
                result = login.complete((query.get("code") or [None])[0], (query.get("state") or [None])[0])
            except LoginError as exc:
                results.put(("listener", exc))
                return self._page(400, "Login failed", exc.message)
            results.put(("listener", result))
            self._page(200, "Logged in", f"Upstox access token stored, valid until "
                                         f"{ist_text(result.expires_at)} IST. You can close this tab.")

        def _page(self, status: int, title: str, text: str) -> None:
            body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                    f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server_class: type[HTTPServer] = HTTPServer
    if ":" in host:
        import socket

        server_class = type("HTTPServer6", (HTTPServer,), {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), Handler)
    except OSError as exc:
        echo(f"(port {port} is in use ({exc.strerror}); if this service is running there it will complete "
             "the login)")
        return None
    return _Listener(server)
