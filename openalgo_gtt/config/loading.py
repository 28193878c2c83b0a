"""load_settings(): every variable read from its source, checked by its parser, and put in the
Settings; a bad one is a ConfigError naming it."""
from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from openalgo_gtt.config import values
from openalgo_gtt.config.errors import ConfigError, NoDatabase
from openalgo_gtt.config.home import data_home, default_database, earlier_database
from openalgo_gtt.config.pepper import log, pepper_from_file, pepper_value, sqlite_file
from openalgo_gtt.config.security import (
    DEFAULT_FAILED_KEY_LIMIT,
    DEFAULT_RATE_LIMIT,
    parse_allowed_ips,
    parse_bool,
    parse_rate_limit,
    parse_trusted_proxies,
)
from openalgo_gtt.config.settings import BROKERS, LIVE_TRADE_LIMIT, LOG_LEVELS, SANDBOX_TRADE_LIMIT, Settings
from openalgo_gtt.config.sources import access_token, variables
from openalgo_gtt.domain.notifications import DEFAULT_EVENTS

T = TypeVar("T")

# Their values are secrets (a Redis URI may carry a password): an error shows "(hidden)".
HIDDEN = ("API_KEY_PEPPER", "ACCESS_TOKEN", "UPSTOX_API_SECRET", "KITE_API_SECRET", "KITE_ACCESS_TOKEN",
          "RATE_LIMIT_STORAGE_URI", "NOTIFY_URLS")


def _parse(source: Mapping[str, str], name: str, parser: Callable[[str], T], default: T) -> T:
    raw = source.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parser(raw)
    except ValueError as exc:
        reason = str(exc) or "is not valid"
        shown = "(hidden)" if name in HIDDEN else repr(raw)
        raise ConfigError(f"{name}={shown}: {reason}") from None


# What a command may do to the store (`store` of load_settings): create it (serve, db upgrade,
# the WSGI entry), find it or say where it looked (every other command), or not touch it (notify test).
CREATE, EXISTING, NONE = "create", "existing", "none"


def _database_url(source: Mapping[str, str], home: Path, cwd: Path) -> str:
    """DATABASE_URL, else the data folder's SQLite file. A database an earlier version made in
    `data/` of this working directory is never left behind silently for a new empty one."""
    explicit = _parse(source, "DATABASE_URL", values.text, None)
    if explicit is not None:
        return explicit
    database, earlier = default_database(home), earlier_database(cwd)
    if earlier.exists() and earlier != database:
        if not database.exists():
            raise ConfigError(
                f"the database is now kept in the data folder {home}, and there is none there yet, but an earlier "
                f"version's database is at {earlier}: move it and its api_key_pepper there (mv {earlier} "
                f"{earlier.parent / 'api_key_pepper'} {home}/), or keep using it with "
                f"DATABASE_URL=sqlite:///{earlier}")
        log.warning("%s is not used: the database is %s (DATABASE_URL=sqlite:///%s to use the other)",
                    earlier, database, earlier)
    return f"sqlite:///{database}"


def _where(source: Mapping[str, str], home: Path) -> str:
    if source.get("DATABASE_URL", "").strip():
        return "named by DATABASE_URL"
    return f"the default, in the data folder {home} (OPENALGO_GTT_HOME moves it)"


def load_settings(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None, *, read_dotenv: bool = True,
    store: str = CREATE,
) -> Settings:
    """Build the Settings from the environment, the `.env` of the data folder and of `cwd`, and
    keys.json in `cwd` or the data folder. `store`: CREATE may make a new database (and its
    pepper); EXISTING raises NoDatabase when a SQLite database is not there, and never makes a
    pepper; NONE never touches either (a pepper that is not there is left empty)."""
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    home = data_home(environ, cwd)
    source, dotenv_files = variables(environ, (home, cwd), read_dotenv=read_dotenv)

    data_dir = home
    upstox_token, token_source = access_token((cwd, home), source)
    login_key = _parse(source, "UPSTOX_API_KEY", values.text, None)
    login_secret = _parse(source, "UPSTOX_API_SECRET", values.text, None)
    can_log_in = bool(login_key and login_secret)
    broker_default = "upstox" if upstox_token or can_log_in else "sandbox"
    broker = _parse(source, "BROKER", values.one_of(BROKERS), broker_default)
    if broker == "upstox" and not upstox_token and not can_log_in:
        raise ConfigError("BROKER=upstox: no Upstox access token; set ACCESS_TOKEN, write keys.json, "
                          "or set UPSTOX_API_KEY and UPSTOX_API_SECRET and log in")
    kite_token, kite_token_source = access_token((cwd, home), source, "kite_access_token", "KITE_ACCESS_TOKEN")
    kite_key = _parse(source, "KITE_API_KEY", values.text, None)
    kite_secret = _parse(source, "KITE_API_SECRET", values.text, None)
    if broker == "kite" and not kite_key:
        raise ConfigError("BROKER=kite: set KITE_API_KEY (the Kite Connect app's key; every call carries it)")
    if broker == "kite" and not kite_token and not kite_secret:
        raise ConfigError("BROKER=kite: no Kite access token; set KITE_ACCESS_TOKEN, write kite_access_token "
                          "in keys.json, or set KITE_API_SECRET and log in")
    if (broker == "sandbox" and not kite_key
            and _parse(source, "SANDBOX_PRICES", values.price_source, Settings.sandbox_prices) == "kite"):
        raise ConfigError("SANDBOX_PRICES=kite: set KITE_API_KEY (and KITE_ACCESS_TOKEN or a Kite login); "
                          "the sandbox then reads Kite's quotes for a sandbox on Kite's master")
    port = _parse(source, "PORT", values.port, 5000)

    database_url = _database_url(source, home, cwd)
    db_file = sqlite_file(database_url, cwd)
    if store == EXISTING and db_file is not None and not db_file.exists():
        raise NoDatabase(f"no database at {db_file} ({_where(source, home)}); nothing was done. Start the server "
                         "once (python run.py) or create it with: python run.py db upgrade. If the server uses "
                         "another database, set DATABASE_URL or OPENALGO_GTT_HOME as it has them")
    pepper = _parse(source, "API_KEY_PEPPER", pepper_value, "")
    pepper_source = "the API_KEY_PEPPER variable"
    if not pepper:
        try:
            pepper, pepper_source = pepper_from_file(database_url, home, cwd, generate=store == CREATE)
        except ConfigError:
            if store != NONE:
                raise
            pepper_source = "nowhere: this command does not use it"

    return Settings(
        host=_parse(source, "HOST", values.text, "127.0.0.1"),
        port=port,
        database_url=database_url,
        data_dir=data_dir,
        dotenv_files=dotenv_files,
        api_key_pepper=pepper,
        api_key_pepper_source=pepper_source,
        access_token=upstox_token,
        access_token_source=token_source,
        upstox_api_key=login_key,
        upstox_api_secret=login_secret,
        upstox_redirect_uri=_parse(source, "UPSTOX_REDIRECT_URI", values.redirect_uri,
                                   f"http://127.0.0.1:{port}/upstox/callback"),
        upstox_api_url=_parse(source, "UPSTOX_API_URL", values.url, "https://api.upstox.com"),
        upstox_timeout=_parse(source, "UPSTOX_TIMEOUT", values.positive_seconds, 5.0),
        caller_patience_seconds=_parse(source, "CALLER_PATIENCE_SECONDS", values.positive_seconds, None),
        broker=broker,
        # The sandbox's trades are simulated: its limit must not stop someone trying things out.
        daily_trade_limit=_parse(source, "DAILY_TRADE_LIMIT", values.positive_int,
                                 SANDBOX_TRADE_LIMIT if broker == "sandbox" else LIVE_TRADE_LIMIT),
        log_level=_parse(source, "LOG_LEVEL", values.one_of(LOG_LEVELS), "INFO"),
        server_threads=_parse(source, "SERVER_THREADS", values.positive_int, 8),
        server_connection_limit=_parse(source, "SERVER_CONNECTION_LIMIT", values.positive_int, 1000),
        server_channel_timeout=_parse(source, "SERVER_CHANNEL_TIMEOUT", values.timeout_seconds, 15),
        audit_retention_days=_parse(source, "AUDIT_RETENTION_DAYS", values.non_negative_int, 90),
        kite_api_key=kite_key,
        kite_api_secret=kite_secret,
        kite_access_token=kite_token,
        kite_access_token_source=kite_token_source,
        kite_api_url=_parse(source, "KITE_API_URL", values.url, Settings.kite_api_url),
        kite_login_url=_parse(source, "KITE_LOGIN_URL", values.url, Settings.kite_login_url),
        kite_timeout=_parse(source, "KITE_TIMEOUT", values.positive_seconds, 5.0),
        kite_order_rate_limits=_parse(source, "KITE_ORDER_RATE_LIMITS", parse_rate_limit, Settings.kite_order_rate_limits),
        kite_quote_rate_limits=_parse(source, "KITE_QUOTE_RATE_LIMITS", parse_rate_limit, Settings.kite_quote_rate_limits),
        instruments_url=_parse(source, "INSTRUMENTS_URL", values.url, Settings.instruments_url),
        order_rate_limits=_parse(source, "ORDER_RATE_LIMITS", values.text, Settings.order_rate_limits),
        auto_entry_pct=_parse(source, "AUTO_ENTRY_PCT", values.percentage, Decimal("4")),
        auto_target_pct=_parse(source, "AUTO_TARGET_PCT", values.percentage, Decimal("1")),
        auto_sl_pct=_parse(source, "AUTO_SL_PCT", values.percentage, Decimal("1")),
        oco_poll_seconds=_parse(source, "OCO_POLL_SECONDS", values.positive_seconds, 2.0),
        dedupe_window_seconds=_parse(source, "DEDUPE_WINDOW_SECONDS", values.non_negative_int, 60),
        settle_seconds=_parse(source, "SETTLE_SECONDS", values.positive_seconds, 10.0),
        rate_limit_storage_uri=_parse(source, "RATE_LIMIT_STORAGE_URI", values.storage_uri, "memory://"),
        rate_limit=_parse(source, "RATE_LIMIT", parse_rate_limit, DEFAULT_RATE_LIMIT),
        rate_limit_enabled=_parse(source, "RATE_LIMIT_ENABLED", parse_bool, True),
        failed_key_limit=_parse(source, "FAILED_KEY_LIMIT", parse_rate_limit, DEFAULT_FAILED_KEY_LIMIT),
        trusted_proxies=_parse(source, "TRUSTED_PROXIES", parse_trusted_proxies, 0),
        allowed_ips=_parse(source, "ALLOWED_IPS", parse_allowed_ips, ()),
        notify_urls=_parse(source, "NOTIFY_URLS", values.notify_urls, ()),
        notify_events=_parse(source, "NOTIFY_EVENTS", values.notify_events, DEFAULT_EVENTS),
        notify_timeout=_parse(source, "NOTIFY_TIMEOUT", values.positive_seconds, 10.0),
        dashboard_session_hours=_parse(source, "DASHBOARD_SESSION_HOURS", values.session_hours, 12.0),
        sandbox_capital=_parse(source, "SANDBOX_CAPITAL", values.rupees, Settings.sandbox_capital),
        sandbox_prices=_parse(source, "SANDBOX_PRICES", values.price_source, Settings.sandbox_prices),
        sandbox_quote_rate_limits=_parse(source, "SANDBOX_QUOTE_RATE_LIMITS", parse_rate_limit,
                                         Settings.sandbox_quote_rate_limits),
    )
