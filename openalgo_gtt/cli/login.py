"""`python run.py login`: logging in to Upstox from a terminal.

The browser flow prints the authorization URL and takes whichever comes first: Upstox's redirect
to a one-shot HTTP listener on the redirect URI's port, the redirect address pasted at the
prompt (read in a thread), or a login the running server completed, seen in the database. The
`--app` flow asks Upstox for an approval in the Upstox app and waits for the running server's
notifier webhook to store the token. The use cases themselves are services/upstox_login.py.
"""
from __future__ import annotations

import html
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openalgo_gtt.domain.clock import ist_text
from openalgo_gtt.services.upstox_login import LoginError, LoginResult, UpstoxLogin

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def run_login(gateway, *, echo: Callable[[str], Any], prompt: Callable[[str], str], via_app: bool = False,
              listen: bool = True, timeout: float = 300.0, poll_interval: float = 0.5,
              service: UpstoxLogin | None = None) -> LoginResult:
    """Log in from a terminal and store the token; LoginError when it fails or times out.

    `listen`: complete the login through a listener on the redirect URI's port when that URI is
    on this machine and the port is free. `via_app`: approve in the Upstox app instead.
    """
    login = service or gateway.upstox_login
    broker = getattr(login, "broker_label", "Upstox")  # the same flow logs in to Kite (services/kite_login.py)
    finish = partial(_finish, broker=broker)
    before = login.latest_login_id()
    if via_app:
        return _login_via_app(login, echo, before, timeout, poll_interval)

    url, state = login.begin()
    results: queue.Queue = queue.Queue()
    # Bind the listener before printing the address: a browser that is already logged in to
    # Upstox redirects within milliseconds, and a port not yet listening refuses the redirect.
    listener = _start_listener(login, results, echo) if listen else None
    try:
        echo(f"Open this address in a browser and log in to {broker}:")
        echo(url)
        if listener is not None:
            echo(f"Waiting for Upstox to redirect to {login.config.redirect_uri} ...")
            question = "...or paste the address your browser was sent to"
        else:
            question = "After logging in, paste the address your browser was sent to (it contains ?code= or ?request_token=)"
        _ask(prompt, question, results)
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, value = results.get(timeout=poll_interval)
            except queue.Empty:
                result = login.stored_since(before)
                if result is not None:  # the running server received the redirect
                    echo("")  # end the pending prompt's line
                    return finish(echo, result)
                if time.monotonic() > deadline:
                    raise LoginError(f"No login within {int(timeout)} seconds: run python run.py login again",
                                     status=504) from None
                continue
            if kind == "listener":
                echo("")  # end the pending prompt's line
                if isinstance(value, LoginError):
                    raise value
                return finish(echo, value)
            if kind == "eof":
                if listener is None:
                    raise LoginError("No redirect address given")
                continue  # keep waiting for the listener
            code, pasted_state = _code_and_state(value)
            if not code:
                echo("That has no ?code= (or ?request_token=) in it; paste the whole address from the browser's "
                     "address bar.")
                _ask(prompt, question, results)
                continue
            return finish(echo, login.complete(code, pasted_state or state))
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
        result = login.stored_since(before)
        if result is not None:
            return _finish(echo, result)
        time.sleep(poll_interval)
    raise LoginError(f"No token arrived within {int(timeout)} seconds", status=504)


def _finish(echo, result: LoginResult, broker: str = "Upstox") -> LoginResult:
    who = f" as {result.user_id}" if result.user_id else ""
    echo(f"Logged in to {broker}{who}; the access token is valid until {ist_text(result.expires_at)} IST.")
    for warning in result.warnings:
        echo(f"warning: {warning}")
    return result


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
    code = (values.get("code") or values.get("request_token") or [None])[0]  # Upstox's, or Kite's
    return code, (values.get("state") or [None])[0]


# ----- the one-shot listener on the redirect URI's port ---------------------------------------


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
            if here.path.rstrip("/") != expected_path.rstrip("/") or not (
                    {"code", "request_token", "state", "error"} & query.keys()):
                return self._page(404, "Not found", "Waiting for Upstox's redirect.")
            if done.is_set():
                return self._page(409, "Already handled", "This login was already handled; see the terminal.")
            done.set()
            try:
                code = (query.get("code") or query.get("request_token") or [None])[0]
                result = login.complete(code, (query.get("state") or [None])[0])
            except LoginError as exc:
                results.put(("listener", exc))
                return self._page(400, "Login failed", exc.message)
            results.put(("listener", result))
            self._page(200, "Logged in", f"{getattr(login, 'broker_label', 'Upstox')} access token stored, valid until "
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
        server_class = type("HTTPServer6", (HTTPServer,), {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), Handler)
    except OSError as exc:
        echo(f"(port {port} is in use ({exc.strerror}); if this service is running there it will complete "
             "the login)")
        return None
    return _Listener(server)
