"""The Kite login use cases, mirroring services/upstox_login.py. Pure of Flask, HTTP and SQL.

`begin()` records a one-time state (its SHA-256 hash only, valid STATE_TTL, single use) and
returns Kite's login page with the state in `redirect_params`; Kite redirects to the app's
registered redirect URL (this service's /kite/callback) with `request_token`, `status` and the
state; `complete()` consumes the state, exchanges the request token at `POST /session/token` and
stores the access token encrypted (store/logins.py, as source "kite"), expiring at 06:00 IST the
next day. A callback whose state this gateway did not issue is refused before Kite is called.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from openalgo_gtt.brokers.base import BrokerCallObserver
from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.brokers.kite_login import KiteLoginClient, login_page
from openalgo_gtt.domain.clock import as_utc, ist_text
from openalgo_gtt.services.audit import observe_broker_call
from openalgo_gtt.services.tokens import KITE, TokenProvider, next_expiry
from openalgo_gtt.services.upstox_login import (
    STATE_TTL, LoginError, LoginResult, _refusal, consume_login_state, state_hash,
)
from openalgo_gtt.store.logins import KITE_SOURCE, LoginStates

log = logging.getLogger(__name__)

START_AGAIN = "start the login again at /kite/login or with python run.py login"


@dataclass(frozen=True)
class KiteLoginConfig:
    api_url: str = "https://api.kite.trade"
    login_url: str = "https://kite.zerodha.com/connect/login"
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None  # this service's /kite/callback, as registered on the Kite app
    timeout: float = 5.0
    state_ttl: timedelta = STATE_TTL

    @classmethod
    def from_settings(cls, settings) -> KiteLoginConfig:
        return cls(api_url=settings.kite_api_url, login_url=settings.kite_login_url,
                   api_key=settings.kite_api_key, api_secret=settings.kite_api_secret,
                   redirect_uri=f"http://{settings.host}:{settings.port}/kite/callback", timeout=settings.kite_timeout)

    def require(self) -> None:
        missing = [name for name, value in (("KITE_API_KEY", self.api_key), ("KITE_API_SECRET", self.api_secret))
                   if not value]
        if missing:
            raise LoginError(f"Kite login is not configured: set {', '.join(missing)}", status=503)


class KiteLogin:
    broker_label = "Kite"

    def __init__(self, config: KiteLoginConfig, tokens: TokenProvider, *, states: LoginStates | None = None,
                 observer: BrokerCallObserver | None = observe_broker_call) -> None:
        self.config = config
        self.tokens = tokens
        self._token_store = tokens.store
        self._states = states if states is not None else LoginStates(tokens.store.sessions)
        self._client = KiteLoginClient(config.api_url, timeout=config.timeout, observer=observer)

    @classmethod
    def from_settings(cls, settings, tokens: TokenProvider) -> KiteLogin:
        return cls(KiteLoginConfig.from_settings(settings), tokens)

    def close(self) -> None:
        self._client.close()

    def _now(self) -> datetime:
        return as_utc(self.tokens.now())

    def begin(self) -> tuple[str, str]:
        """(Kite's login page, the one-time state carried in its redirect_params)."""
        self.config.require()
        state = secrets.token_urlsafe(32)
        now = self._now()
        self._states.add(state_hash(state), created_at=now, expires_at=now + self.config.state_ttl,
                         forget_expired_before=now - timedelta(days=1))
        return login_page(self.config.login_url, self.config.api_key, state), state

    def complete(self, request_token: str | None, state: str | None, status: str | None = None) -> LoginResult:
        """The callback: the state first (a forged or replayed one never reaches Kite), then the
        exchange, then the token stored."""
        consume_login_state(self._states, state, self._now(), self.config.state_ttl, START_AGAIN)
        self.config.require()  # after the state: a caller without one learns nothing of the configuration
        if status not in (None, "", "success") or not request_token:
            raise LoginError(f"Kite sent no request token (status {status!r}: was the login cancelled?): "
                             f"{START_AGAIN}")
        try:
            issued = self._client.exchange(request_token, api_key=self.config.api_key,
                                           api_secret=self.config.api_secret)
        except BrokerError as exc:
            raise _refusal(exc, "Kite refused the login") from exc
        now = self._now()
        expires = next_expiry(now, KITE.expiry_time)
        user = issued.user_id[:64] if issued.user_id else None
        self._token_store.save(issued.access_token, user_id=user, source=KITE_SOURCE, issued_at=now,
                               expires_at=expires)
        warnings = ()
        if self.tokens.configured_source:
            where = "keys.json" if self.tokens.configured_source == "keys.json" else "KITE_ACCESS_TOKEN"
            warnings = (f"The login is stored, but the access token from {where} takes precedence: "
                        "remove it and restart to use this login",)
        log.info("Kite login stored for user %s, valid until %s IST", user, ist_text(expires))
        return LoginResult(user, issued.user_name, "login", now, expires, warnings)

    # ----- what the terminal flow waits for -------------------------------------------------

    def latest_login_id(self) -> int | None:
        return self._token_store.latest_id()

    def stored_since(self, mark: int | None) -> LoginResult | None:
        if self._token_store.latest_id() == mark:
            return None
        stored = self._token_store.latest()
        if stored is None:
            return None
        return LoginResult(stored.user_id, None, stored.source, stored.issued_at, stored.expires_at)
