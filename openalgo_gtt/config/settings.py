"""The Settings: every value the gateway is configured with, and its default."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from openalgo_gtt.config.security import DEFAULT_FAILED_KEY_LIMIT, DEFAULT_RATE_LIMIT
from openalgo_gtt.domain.notifications import DEFAULT_EVENTS

BROKERS = ("upstox", "kite", "sandbox")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# DAILY_TRADE_LIMIT's default: 10 successful places a day on a real broker; on the sandbox, high
# enough never to be in the way of someone trying the gateway out.
LIVE_TRADE_LIMIT = 10
SANDBOX_TRADE_LIMIT = 1000


# TradingView waits about 3 s for a 2xx and never resends a 4xx: answered (or queued) within this.
TEXT_PLAIN_PATIENCE = 2.5

@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    database_url: str = "sqlite:///data/openalgo_gtt.db"
    data_dir: Path = Path("data")  # the data folder (config/home.py): the default database, its pepper, .env
    dotenv_files: tuple[Path, ...] = ()  # the .env files read, the data folder's first
    api_key_pepper: str = field(default="", repr=False)
    api_key_pepper_source: str = "the API_KEY_PEPPER variable"  # where the pepper came from, for messages
    access_token: str | None = field(default=None, repr=False)
    access_token_source: str | None = None  # "keys.json" | "environment" | None
    upstox_api_key: str | None = None  # the Upstox app's API key (client_id), for logging in
    upstox_api_secret: str | None = field(default=None, repr=False)
    upstox_redirect_uri: str | None = None
    upstox_api_url: str = "https://api.upstox.com"
    upstox_timeout: float = 5.0
    broker: str = "sandbox"
    daily_trade_limit: int = LIVE_TRADE_LIMIT  # load_settings: SANDBOX_TRADE_LIMIT on the sandbox unless set
    log_level: str = "INFO"
    server_threads: int = 8  # waitress worker threads (python run.py)
    # waitress: open connections at most, and seconds a connection may send nothing before it is
    # closed (slow clients must not hold every connection; put a proxy with timeouts in front).
    server_connection_limit: int = 1000
    server_channel_timeout: int = 15
    audit_retention_days: int = 90  # audit rows older than this are deleted; 0 keeps them forever
    # Kite Connect (BROKER=kite): the app's key and secret, a token (keys.json > environment >
    # the stored login), its API and login page, and its limits (10/s GTT and orders, 1/s quotes).
    kite_api_key: str | None = None
    kite_api_secret: str | None = field(default=None, repr=False)
    kite_access_token: str | None = field(default=None, repr=False)
    kite_access_token_source: str | None = None  # "keys.json" | "environment" | None
    kite_api_url: str = "https://api.kite.trade"
    kite_login_url: str = "https://kite.zerodha.com/connect/login"
    kite_timeout: float = 5.0
    kite_order_rate_limits: str = "10/second"
    kite_quote_rate_limits: str = "1/second"
    instruments_url: str = (
        "https://assets.upstox.com/market-quote/instruments/exchange/complete.json.gz"
    )
    order_rate_limits: str = "10/second;500/minute;2000/30 minutes"
    auto_entry_pct: Decimal = Decimal("4")
    auto_target_pct: Decimal = Decimal("1")
    auto_sl_pct: Decimal = Decimal("1")
    oco_poll_seconds: float = 2.0
    dedupe_window_seconds: int = 60
    # How long an ambiguous place (timeout, lost answer) may still turn up at the broker: until
    # then it is settling and a retry is not placed again.
    settle_seconds: float = 10.0
    rate_limit_storage_uri: str = "memory://"
    rate_limit: str = DEFAULT_RATE_LIMIT  # per API key (else per address)
    rate_limit_enabled: bool = True  # caller limits and the wrong-key throttle
    failed_key_limit: str = DEFAULT_FAILED_KEY_LIMIT  # wrong keys per address
    trusted_proxies: int = 0  # proxies in front whose X-Forwarded-For is believed
    allowed_ips: tuple[str, ...] = ()
    # Apprise URLs the trader is notified at (secrets: never logged or shown); empty is off.
    notify_urls: tuple[str, ...] = field(default=(), repr=False)
    notify_events: tuple[str, ...] = DEFAULT_EVENTS  # EventKind values
    notify_timeout: float = 10.0  # seconds one delivery to one URL may take
    dashboard_session_hours: float = 12.0  # the trader's page signs a browser out after this
    # The sandbox's paper account (issue 27, docs/paper.md): its starting capital in rupees.
    sandbox_capital: Decimal = Decimal("1000000")
    # Where the sandbox's prices come from: "manual" (pushed ticks and replay) or "upstox" (the
    # quote API with the Upstox token, about one batched read a second; services/live_prices.py).
    sandbox_prices: str = "manual"
    sandbox_quote_rate_limits: str = "1/second"  # the live price reads, all symbols together
    # How long a caller waits for a place's answer: a place that cannot be sent within it is
    # queued (202). None: TEXT_PLAIN_PATIENCE for a text/plain body (TradingView gives up after
    # 3 s), the broker timeout otherwise.
    caller_patience_seconds: float | None = None

    def patience(self, text_plain: bool) -> float:
        """The request budget of a caller: what it waits for an answer, at most the broker timeout."""
        if self.caller_patience_seconds is not None:
            return min(self.caller_patience_seconds, self.broker_timeout)
        return min(TEXT_PLAIN_PATIENCE, self.broker_timeout) if text_plain else self.broker_timeout

    @property
    def broker_timeout(self) -> float:
        """Seconds for connecting to, and each read from, the configured broker."""
        return self.kite_timeout if self.broker == "kite" else self.upstox_timeout
