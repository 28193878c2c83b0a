"""Kite Connect's login, on the Kite transport: the login page's address (opened by a browser,
never called) and the session exchange, `POST /session/token` with
`checksum = sha256(api_key + request_token + api_secret)` (the reference notes, "Login").

Kite has no `state` parameter of its own: the gateway's one-time state travels in
`redirect_params`, which Kite appends to its redirect."""
from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode

from openalgo_gtt.brokers.kite import KiteHttp, VersionOnly
from openalgo_gtt.brokers.kite_wire import interpret
from openalgo_gtt.domain.login import IssuedToken


def _session_interpret(status: int, raw: bytes, is_write: bool, *, bearer: bool = True) -> dict:
    # The exchange carries no access token: a 403 there is a bad request token or checksum.
    return interpret(status, raw, is_write, bearer=False)


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    return hashlib.sha256((api_key + request_token + api_secret).encode("utf-8")).hexdigest()


def login_page(login_url: str, api_key: str, state: str) -> str:
    """Kite's login page for this app, with the state in `redirect_params`."""
    return f"{login_url}?" + urlencode({"v": "3", "api_key": api_key, "redirect_params": urlencode({"state": state})},
                                       quote_via=quote)


def _issued(payload: dict) -> IssuedToken:
    data = payload["data"]
    token = data["access_token"]
    if not isinstance(token, str) or not token:
        raise ValueError("no access_token in the session answer")
    user_id, user_name = data.get("user_id"), data.get("user_name")
    return IssuedToken(access_token=token, user_id=str(user_id) if user_id else None,
                       user_name=str(user_name) if user_name else None)


class KiteLoginClient(KiteHttp):
    interpret = staticmethod(_session_interpret)

    def exchange(self, request_token: str, *, api_key: str, api_secret: str) -> IssuedToken:
        form = {"api_key": api_key, "request_token": request_token,
                "checksum": checksum(api_key, request_token, api_secret)}
        return self._call("session.token", _issued, form=form, auth=VersionOnly())
