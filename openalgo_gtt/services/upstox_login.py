"""The Upstox login use cases. Pure of Flask, of HTTP and of SQL.

Two ways, both ending with the token stored encrypted (store/logins.py `TokenStore`):

- The authorization-code flow (browser, or `python run.py login`): `begin()` records a one-time
  `state` (only its SHA-256 hash, valid STATE_TTL, single use) and returns Upstox's
  authorization-dialog URL; Upstox redirects to UPSTOX_REDIRECT_URI with `code` and `state`;
  `complete(code, state)` consumes the state, exchanges the code and stores the token.
- The access-token request (approve in the Upstox app): `request_app_token()` asks Upstox; once
  the user approves, Upstox POSTs the token to this service's `/upstox/notifier/<secret>` and
  `accept_notification(payload)` stores it.

Upstox is called through `brokers.upstox_login.UpstoxLoginClient`, the states are kept by
`store.logins.LoginStates`; broker failures become `LoginError`s with the HTTP status to answer.
The terminal flow (`python run.py login`) is cli/login.py. A token expires at the next 03:30 IST
after it was issued.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from openalgo_gtt.brokers.base import BrokerCallObserver
from openalgo_gtt.brokers.errors import BrokerError, BrokerTimeout, BrokerUnreachable
from openalgo_gtt.brokers.upstox_login import UpstoxLoginClient, parse_notification
from openalgo_gtt.domain.clock import as_utc, ist_text
from openalgo_gtt.domain.login import AppTokenRequest, IssuedToken, StateUse, notifier_secret
from openalgo_gtt.services.audit import observe_broker_call
from openalgo_gtt.services.tokens import TokenProvider, next_expiry, secrets_match
from openalgo_gtt.store.logins import LoginStates

log = logging.getLogger(__name__)

NOTIFIER_PREFIX = "/upstox/notifier/"
STATE_TTL = timedelta(minutes=10)
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


def consume_login_state(states: LoginStates, state: str | None, now: datetime, ttl: timedelta,
                        start_again: str = START_AGAIN) -> None:
    """Mark a broker login's one-time `state` used, atomically (Upstox's login and Kite's, each
    with its own `start_again` hint); LoginError (400) when it is missing, unknown, already used
    or expired."""
    if not state:
        raise LoginError(f"The callback carries no state: {start_again}")
    use = states.consume(state_hash(state), now)
    if use is StateUse.TAKEN:
        return
    if use is StateUse.UNKNOWN:
        raise LoginError(f"Unknown login state (this gateway did not start this login): {start_again}")
    if use is StateUse.ALREADY_USED:
        raise LoginError(f"This login was already used (a state is single use): {start_again}")
    minutes = int(ttl.total_seconds() // 60)
    raise LoginError(f"The login took longer than {minutes} minutes and its state expired: {start_again}")


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


class UpstoxLogin:
    """The login use cases. `tokens` supplies the token store and the (injectable) clock;
    `states` keeps the one-time login states (by default in the token store's database).

    The Upstox client follows `config`: assigning a new config builds a new client."""

    def __init__(self, config: LoginConfig, tokens: TokenProvider, *, pepper: str,
                 states: LoginStates | None = None,
                 observer: BrokerCallObserver | None = observe_broker_call) -> None:
        self.tokens = tokens
        self._token_store = tokens.store
        self._states = states if states is not None else LoginStates(tokens.store.sessions)
        self._observer = observer
        self._client: UpstoxLoginClient | None = None
        self._notifier_secret = notifier_secret(pepper)
        self.config = config

    @classmethod
    def from_settings(cls, settings, tokens: TokenProvider) -> UpstoxLogin:
        return cls(LoginConfig.from_settings(settings), tokens, pepper=settings.api_key_pepper,
                   states=LoginStates(tokens.store.sessions))

    @property
    def config(self) -> LoginConfig:
        return self._config

    @config.setter
    def config(self, config: LoginConfig) -> None:
        if self._client is not None:
            self._client.close()
        self._config = config
        self._client = UpstoxLoginClient(config.api_url, timeout=config.timeout, observer=self._observer)

    def _now(self) -> datetime:
        return as_utc(self.tokens.now())

    # ----- the authorization-code flow -----------------------------------------------------

    def begin(self) -> tuple[str, str]:
        """(Upstox's authorization-dialog URL, the one-time state in it)."""
        self.config.require(redirect=True)
        state = secrets.token_urlsafe(32)
        now = self._now()
        self._states.add(state_hash(state), created_at=now, expires_at=now + self.config.state_ttl,
                         forget_expired_before=now - timedelta(days=1))
        url = self._client.dialog_url(client_id=self.config.api_key, redirect_uri=self.config.redirect_uri,
                                      state=state)
        return url, state

    def consume_state(self, state: str | None) -> None:
        """Mark `state` used, atomically; LoginError (400) when unknown, used or expired."""
        consume_login_state(self._states, state, self._now(), self.config.state_ttl)

    def complete(self, code: str | None, state: str | None) -> LoginResult:
        """The callback: consume the state, then exchange the code and store the token. The state
        comes first: a caller without one learns nothing of the configuration (a login that began
        was configured; one that was not could not begin)."""
        self.consume_state(state)
        self.config.require(redirect=True)
        if not code:
            raise LoginError(f"Upstox sent no authorization code (was the login cancelled?): {START_AGAIN}")
        return self.exchange(code)

    def exchange(self, code: str) -> LoginResult:
        try:
            issued = self._client.exchange_code(code, client_id=self.config.api_key,
                                                client_secret=self.config.api_secret,
                                                redirect_uri=self.config.redirect_uri)
        except BrokerError as exc:
            raise _refusal(exc, "Upstox refused the login") from exc
        now = self._now()
        return self._store(issued, "login", now, next_expiry(now))

    # ----- the access-token request (approve in the Upstox app) -----------------------------

    @property
    def notifier_path(self) -> str:
        """This service's notifier webhook path; set `<public base URL><path>` on the Upstox app."""
        return NOTIFIER_PREFIX + self._notifier_secret

    def verify_notifier_secret(self, candidate: str) -> bool:
        return secrets_match(candidate, self._notifier_secret)

    def request_app_token(self) -> AppTokenRequest:
        self.config.require(redirect=False)
        try:
            return self._client.request_app_token(client_id=self.config.api_key,
                                                  client_secret=self.config.api_secret)
        except BrokerError as exc:
            raise _refusal(exc, "Upstox refused the access-token request") from exc

    def accept_notification(self, payload: dict) -> LoginResult:
        """Store the token Upstox POSTed to the notifier webhook (the URL secret is checked by the caller)."""
        try:
            issued = parse_notification(payload, client_id=self.config.api_key)
        except BrokerError as exc:
            raise LoginError(exc.message) from exc
        issued_at = issued.issued_at or self._now()
        return self._store(issued, "notifier", issued_at, issued.expires_at or next_expiry(issued_at))

    # ----- what the terminal flow waits for -------------------------------------------------

    def latest_login_id(self) -> int | None:
        """A mark to pass to `stored_since`."""
        return self._token_store.latest_id()

    def stored_since(self, mark: int | None) -> LoginResult | None:
        """The login stored after `mark` was taken (by this process or the running server), if any."""
        if self._token_store.latest_id() == mark:
            return None
        stored = self._token_store.latest()
        if stored is None:
            return None
        warnings = ()
        if self.tokens.configured_source:
            warnings = (f"the access token from {self.tokens.configured_source} takes precedence over this login",)
        return LoginResult(stored.user_id, None, stored.source, stored.issued_at, stored.expires_at, warnings)

    # ----- internals -----------------------------------------------------------------------

    def _store(self, issued: IssuedToken, source: str, issued_at: datetime, expires: datetime) -> LoginResult:
        user = issued.user_id[:64] if issued.user_id else None
        self._token_store.save(issued.access_token, user_id=user, source=source, issued_at=issued_at,
                               expires_at=expires)
        warnings = []
        if self.tokens.configured_source:
            where = "keys.json" if self.tokens.configured_source == "keys.json" else "ACCESS_TOKEN"
            warnings.append(f"The login is stored, but the access token from {where} takes precedence: "
                            f"remove it and restart to use this login")
        log.info("Upstox login stored for user %s (via %s), valid until %s IST", user, source, ist_text(expires))
        return LoginResult(user, issued.user_name, source, as_utc(issued_at), as_utc(expires), tuple(warnings))


def _refusal(exc: BrokerError, what: str) -> LoginError:
    """A failed Upstox call as the login answers it."""
    if isinstance(exc, BrokerTimeout):
        return LoginError("Upstox did not answer in time; try again", status=504)
    if exc.http_status is None and isinstance(exc, BrokerUnreachable):
        return LoginError("Upstox could not be reached; try again", status=502)
    text = f"{what}: {exc.message}" + (f" ({exc.code})" if exc.code else "")
    # Upstox refused what we sent (a bad or used code, wrong credentials): 400. It broke: 502.
    status = exc.http_status or 0
    return LoginError(text, status=400 if 400 <= status < 500 else 502, code=exc.code)
