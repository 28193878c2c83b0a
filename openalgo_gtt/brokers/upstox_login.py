"""Upstox's login endpoints, through the routes table and transport of upstox.py.

- `dialog_url`: the authorization dialog the browser opens (`login.dialog`; built, not called).
- `exchange_code`: `login.token`, form-encoded; the answer is a flat object with `access_token`,
  `user_id`, `user_name`, ...; a bad code is an error envelope (UDAPI100057), wrong app
  credentials a 401 (UDAPI100016), both InputRejected.
- `request_app_token`: `login.token_request` with `{"client_secret": ...}`; Upstox then asks the
  user to approve in the Upstox app and POSTs the token to the app's notifier URL, whose body
  `parse_notification` reads: `{"client_id", "user_id", "access_token", "token_type": "Bearer",
  "issued_at", "expires_at" (epoch ms strings), "message_type": "access_token"}`. Instants are
  read tolerantly (ms or seconds, strings or numbers, ISO text).

Failures are `errors` types, like every broker call; the login use case words them.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from openalgo_gtt.brokers.errors import InputRejected
from openalgo_gtt.brokers.upstox import ROUTES, UpstoxHttp
from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.login import AppTokenRequest, IssuedToken


class UpstoxLoginClient(UpstoxHttp):
    """The login calls. They carry no bearer token and are never retried: a code is single use."""

    def dialog_url(self, *, client_id: str, redirect_uri: str, state: str) -> str:
        """Upstox's authorization dialog, for the browser; it redirects to `redirect_uri` with
        `code` and `state`."""
        _method, path = ROUTES["login.dialog"]
        query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                           "state": state})
        return f"{self._base_url}{path}?{query}"

    def exchange_code(self, code: str, *, client_id: str, client_secret: str, redirect_uri: str) -> IssuedToken:
        form = {"code": code, "client_id": client_id, "client_secret": client_secret,
                "redirect_uri": redirect_uri, "grant_type": "authorization_code"}
        return self._call("login.token", _issued_token, form=form)

    def request_app_token(self, *, client_id: str, client_secret: str) -> AppTokenRequest:
        return self._call("login.token_request", _app_token_request, path_args={"client_id": client_id},
                          body={"client_secret": client_secret})


def parse_notification(payload: dict, *, client_id: str | None) -> IssuedToken:
    """The token Upstox POSTed to the notifier webhook; InputRejected when it is not an
    access-token notification for `client_id` (the webhook's URL secret is checked before)."""
    kind = payload.get("message_type")
    if kind is not None and kind != "access_token":
        raise _not_ours(f"Not an access-token notification (message_type={kind!r})")
    sender = payload.get("client_id")
    if sender is not None and client_id and str(sender) != client_id:
        raise _not_ours("The notification's client_id is not this service's UPSTOX_API_KEY")
    token_type = payload.get("token_type")
    if token_type is not None and str(token_type).lower() != "bearer":
        raise _not_ours(f"Unsupported token_type {token_type!r}")
    token = payload.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise _not_ours("The notification carries no access_token")
    return IssuedToken(token.strip(), _optional_text(payload.get("user_id")), _optional_text(payload.get("user_name")),
                       _moment(payload.get("issued_at")), _moment(payload.get("expires_at")))


# The parsers raise ValueError on a success answer without what was asked for; the transport
# turns that into UnreadableAnswer.


def _issued_token(payload: dict) -> IssuedToken:
    token = payload.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise ValueError("the token answer has no access_token")
    return IssuedToken(token.strip(), _optional_text(payload.get("user_id")), _optional_text(payload.get("user_name")))


def _app_token_request(payload: dict) -> AppTokenRequest:
    data = payload.get("data")
    if payload.get("status") != "success" or not isinstance(data, dict):
        raise ValueError("the access-token request answer has no data")
    notifier = data.get("notifier_url")
    return AppTokenRequest(_moment(data.get("authorization_expiry")), notifier if isinstance(notifier, str) else None)


def _not_ours(message: str) -> InputRejected:
    return InputRejected(message, may_have_reached=False)


def _optional_text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


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
