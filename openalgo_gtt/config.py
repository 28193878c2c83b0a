"""One Settings object, read once at start.

Sources, highest priority first: the process environment, then a `.env` file in the working
directory. The Upstox access token is the exception the seed engine established: a `keys.json`
(`{"access_token": "..."}`) in the working directory beats the environment; Kite's is
`{"kite_access_token": "..."}` in the same file, which beats KITE_ACCESS_TOKEN.

A bad value raises `ConfigError` with one line naming the variable; the command line prints that
line and exits, never a traceback.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlparse

from dotenv import dotenv_values

from openalgo_gtt.domain.model import EventKind
from openalgo_gtt.domain.notifications import DEFAULT_EVENTS, split_urls
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

log = logging.getLogger(__name__)

T = TypeVar("T")

BROKERS = ("upstox", "kite", "sandbox")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_PEPPER_LENGTH = 32
PEPPER_FILE_NAME = "api_key_pepper"


# Per caller (API key, else address). Against abuse, not for pacing: a burst of 40 TradingView
# alerts arriving together must pass (TradingView never re-sends a 4xx, and the broker pacer
# already queues order calls to Upstox's own limits).
DEFAULT_RATE_LIMIT = "50 per second;600 per minute"
# Wrong API keys allowed per client address before further wrong keys from it get 429.
DEFAULT_FAILED_KEY_LIMIT = "20 per minute"
DEFAULT_STORAGE_URI = "memory://"
MAX_TRUSTED_PROXIES = 10


# ---------------------------------------------------------------------------------------------
# The security settings' defaults and parsers (services/abuse.py re-exports them): each parser
# takes the raw string and raises ValueError with a human reason.


def parse_rate_limit(raw: str) -> str:
    """`50 per second;600 per minute` or `50/second;600/minute` (`;` `,` or `|` between)."""
    # Imported here: limits (with its asyncio storages) is a large import that commands which
    # set no rate limit, such as `instruments load`, should not pay for.
    from limits import parse_many

    value = raw.strip()
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if not items:
        raise ValueError('must be rate limits like "50 per second;600 per minute"')
    return value


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def parse_storage_uri(raw: str) -> str:
    """memory://, redis://host:port[/db] or rediss://: the order pacer's shared schedule runs a
    script on one Redis server, so Sentinel and Cluster URIs are not taken."""
    from limits.storage import SCHEMES  # the schemes `limits` knows

    value = raw.strip()
    scheme = urlparse(value).scheme
    if scheme not in SCHEMES or scheme.startswith("async+"):
        raise ValueError("must be a storage URI such as memory:// or redis://127.0.0.1:6379")
    if "redis" in scheme and importlib.util.find_spec("redis") is None:
        raise ValueError("needs the redis package: pip install redis")
    return value


def parse_trusted_proxies(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None
    if not 0 <= value <= MAX_TRUSTED_PROXIES:
        raise ValueError(f"must be between 0 and {MAX_TRUSTED_PROXIES}")
    return value


def parse_allowed_ips(raw: str) -> tuple[str, ...]:
    """Comma- or space-separated addresses and CIDR networks; "" means everyone."""
    networks = []
    for item in raw.replace(",", " ").split():
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


class ConfigError(Exception):
    """A configuration value is missing or malformed. str(error) is the one line to show."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    database_url: str = "sqlite:///data/openalgo_gtt.db"
    data_dir: Path = Path("data")
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
    daily_trade_limit: int = 10
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

    @property
    def broker_timeout(self) -> float:
        """Seconds for connecting to, and each read from, the configured broker."""
        return self.kite_timeout if self.broker == "kite" else self.upstox_timeout
    dashboard_session_hours: float = 12.0  # the trader's page signs a browser out after this


# ---------------------------------------------------------------------------------------------
# Value parsers: each takes the raw string and raises ValueError with a human reason.


def _whole_number(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None


def _positive_int(raw: str) -> int:
    value = _whole_number(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _non_negative_int(raw: str) -> int:
    value = _whole_number(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive whole number")
    return value


def _port(raw: str) -> int:
    value = _whole_number(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not 0 < value <= 600:
        raise ValueError("must be a number of seconds greater than 0 and at most 600")
    return value


def _session_hours(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of hours") from None
    if not 0 < value <= 24 * 30:  # NaN fails this too
        raise ValueError("must be a number of hours greater than 0 and at most 720 (30 days)")
    return value


def _timeout_seconds(raw: str) -> int:
    value = _whole_number(raw)
    if not 1 <= value <= 3600:
        raise ValueError("must be a whole number of seconds from 1 to 3600")
    return value


def _percentage(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not value.is_finite() or not 0 < value < 100:
        raise ValueError("must be a percentage greater than 0 and less than 100")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower() if choices == BROKERS else raw.strip().upper()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def _text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _storage_uri(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("memory://", "redis://", "rediss://")):
        raise ValueError("must be memory://, or a redis:// or rediss:// URI")
    return value


def _redirect_uri(raw: str) -> str:
    value = raw.strip()  # kept exactly (a trailing slash included): Upstox compares it verbatim
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def _notify_urls(raw: str) -> tuple[str, ...]:
    urls = split_urls(raw)
    for position, url in enumerate(urls, start=1):
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme or not rest:
            raise ValueError(f"URL {position} is not an Apprise URL (scheme://...); separate URLs with spaces "
                             "or commas, and write a comma inside a URL as %2C")
    return urls


def _notify_events(raw: str) -> tuple[str, ...]:
    names = [part.strip().lower() for part in raw.replace(",", " ").split() if part.strip()]
    if names == ["all"]:
        return tuple(kind.value for kind in EventKind)
    if names in (["none"], ["default"]):
        return () if names == ["none"] else DEFAULT_EVENTS
    known = {kind.value for kind in EventKind}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; choose from all, default, none or "
                         f"{', '.join(sorted(known))}")
    return tuple(dict.fromkeys(names))


def _pepper(raw: str) -> str:
    if len(raw) < MIN_PEPPER_LENGTH:
        raise ValueError(f"must be at least {MIN_PEPPER_LENGTH} characters")
    return raw


def _parse(source: Mapping[str, str], name: str, parser: Callable[[str], T], default: T) -> T:
    raw = source.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parser(raw)
    except ValueError as exc:
        reason = str(exc) or "is not valid"
        # A Redis URI may carry a password.
        shown = "(hidden)" if name in ("API_KEY_PEPPER", "ACCESS_TOKEN", "UPSTOX_API_SECRET", "KITE_API_SECRET",
                                       "KITE_ACCESS_TOKEN", "RATE_LIMIT_STORAGE_URI", "NOTIFY_URLS") else repr(raw)
        raise ConfigError(f"{name}={shown}: {reason}") from None


# ---------------------------------------------------------------------------------------------


def _access_token(cwd: Path, source: Mapping[str, str], key: str = "access_token",
                  variable: str = "ACCESS_TOKEN") -> tuple[str | None, str | None]:
    """keys.json beats the environment, as in the seed engine (Upstox's `access_token`, Kite's
    `kite_access_token`)."""
    keys_file = cwd / "keys.json"
    if keys_file.exists():
        try:
            token = json.loads(keys_file.read_text(encoding="utf-8")).get(key)
        except (ValueError, AttributeError, OSError):
            raise ConfigError(
                'keys.json: must be a JSON object like {"access_token": "..."}'
            ) from None
        if isinstance(token, str) and token.strip():
            return token.strip(), "keys.json"
    token = (source.get(variable) or "").strip()
    return (token, "environment") if token else (None, None)


def _sqlite_file(database_url: str, cwd: Path) -> Path | None:
    """The database file of a SQLite URL (relative paths are the working directory's), else None."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    path = Path(url.database)
    return path if path.is_absolute() else cwd / path


def _read_pepper(path: Path) -> str:
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < MIN_PEPPER_LENGTH:
        raise ConfigError(f"{path}: the stored API key pepper is too short; delete it or set API_KEY_PEPPER")
    return value


def _generate_pepper(path: Path) -> str:
    """Generate a pepper into `path`, readable only by its owner (or read the one a process
    starting at the same moment wrote)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    # O_EXCL: two workers starting together must not write two different peppers.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_pepper(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    log.warning(
        "API_KEY_PEPPER is not set: generated one into %s (owner-only). Keep this file: "
        "without it every API key stops working.",
        path,
    )
    return value


def pepper_file_for(database_url: str, data_dir: Path, cwd: Path) -> Path:
    """Where the generated pepper lives: beside a SQLite database file (so every command using
    that database finds it, whatever its working directory), else `data/` of the working
    directory (PostgreSQL: set API_KEY_PEPPER instead, see README)."""
    db_file = _sqlite_file(database_url, cwd)
    return (db_file.parent if db_file is not None else data_dir) / PEPPER_FILE_NAME


def _pepper_from_file(database_url: str, data_dir: Path, cwd: Path) -> tuple[str, str]:
    """(pepper, where it lives) when API_KEY_PEPPER is not set.

    A SQLite database keeps its pepper file beside it. Before that, the file was generated into
    `data/` of the server's working directory; a database whose pepper is still only there is
    read from there. A new pepper is generated only for a database that does not exist yet: for
    an existing one, a missing pepper means this process cannot verify its keys, and inventing a
    pepper would print keys that cannot work."""
    path = pepper_file_for(database_url, data_dir, cwd)
    if path.exists():
        return _read_pepper(path), f"the file {path}"
    earlier = data_dir / PEPPER_FILE_NAME
    if earlier != path and earlier.exists():
        return _read_pepper(earlier), f"the file {earlier}"
    db_file = _sqlite_file(database_url, cwd)
    if db_file is not None and db_file.exists():
        raise ConfigError(
            f"API_KEY_PEPPER is not set and there is no pepper file at {path} for the existing database "
            f"{db_file}: set API_KEY_PEPPER to the server's pepper, or put the server's {PEPPER_FILE_NAME} "
            "file beside the database"
        )
    return _generate_pepper(path), f"the file {path}"


def load_settings(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None, *, read_dotenv: bool = True
) -> Settings:
    """Build the Settings from the environment, a .env in `cwd`, and keys.json in `cwd`."""
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    source: dict[str, str] = {}
    dotenv_file = cwd / ".env"
    if read_dotenv and dotenv_file.exists():
        source.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
    source.update(environ)  # the environment wins over .env

    data_dir = cwd / "data"
    access_token, token_source = _access_token(cwd, source)
    login_key = _parse(source, "UPSTOX_API_KEY", _text, None)
    login_secret = _parse(source, "UPSTOX_API_SECRET", _text, None)
    can_log_in = bool(login_key and login_secret)
    broker_default = "upstox" if access_token or can_log_in else "sandbox"
    broker = _parse(source, "BROKER", _one_of(BROKERS), broker_default)
    if broker == "upstox" and not access_token and not can_log_in:
        raise ConfigError("BROKER=upstox: no Upstox access token; set ACCESS_TOKEN, write keys.json, "
                          "or set UPSTOX_API_KEY and UPSTOX_API_SECRET and log in")
    kite_token, kite_token_source = _access_token(cwd, source, "kite_access_token", "KITE_ACCESS_TOKEN")
    kite_key = _parse(source, "KITE_API_KEY", _text, None)
    kite_secret = _parse(source, "KITE_API_SECRET", _text, None)
    if broker == "kite" and not kite_key:
        raise ConfigError("BROKER=kite: set KITE_API_KEY (the Kite Connect app's key; every call carries it)")
    if broker == "kite" and not kite_token and not kite_secret:
        raise ConfigError("BROKER=kite: no Kite access token; set KITE_ACCESS_TOKEN, write kite_access_token "
                          "in keys.json, or set KITE_API_SECRET and log in")
    port = _parse(source, "PORT", _port, 5000)

    database_url = _parse(source, "DATABASE_URL", _text, f"sqlite:///{data_dir / 'openalgo_gtt.db'}")
    pepper = _parse(source, "API_KEY_PEPPER", _pepper, "")
    pepper_source = "the API_KEY_PEPPER variable"
    if not pepper:
        pepper, pepper_source = _pepper_from_file(database_url, data_dir, cwd)

    return Settings(
        host=_parse(source, "HOST", _text, "127.0.0.1"),
        port=port,
        database_url=database_url,
        data_dir=data_dir,
        api_key_pepper=pepper,
        api_key_pepper_source=pepper_source,
        access_token=access_token,
        access_token_source=token_source,
        upstox_api_key=login_key,
        upstox_api_secret=login_secret,
        upstox_redirect_uri=_parse(source, "UPSTOX_REDIRECT_URI", _redirect_uri,
                                   f"http://127.0.0.1:{port}/upstox/callback"),
        upstox_api_url=_parse(source, "UPSTOX_API_URL", _url, "https://api.upstox.com"),
        upstox_timeout=_parse(source, "UPSTOX_TIMEOUT", _positive_seconds, 5.0),
        broker=broker,
        daily_trade_limit=_parse(source, "DAILY_TRADE_LIMIT", _positive_int, 10),
        log_level=_parse(source, "LOG_LEVEL", _one_of(LOG_LEVELS), "INFO"),
        server_threads=_parse(source, "SERVER_THREADS", _positive_int, 8),
        server_connection_limit=_parse(source, "SERVER_CONNECTION_LIMIT", _positive_int, 1000),
        server_channel_timeout=_parse(source, "SERVER_CHANNEL_TIMEOUT", _timeout_seconds, 15),
        audit_retention_days=_parse(source, "AUDIT_RETENTION_DAYS", _non_negative_int, 90),
        kite_api_key=kite_key,
        kite_api_secret=kite_secret,
        kite_access_token=kite_token,
        kite_access_token_source=kite_token_source,
        kite_api_url=_parse(source, "KITE_API_URL", _url, Settings.kite_api_url),
        kite_login_url=_parse(source, "KITE_LOGIN_URL", _url, Settings.kite_login_url),
        kite_timeout=_parse(source, "KITE_TIMEOUT", _positive_seconds, 5.0),
        kite_order_rate_limits=_parse(source, "KITE_ORDER_RATE_LIMITS", parse_rate_limit, Settings.kite_order_rate_limits),
        kite_quote_rate_limits=_parse(source, "KITE_QUOTE_RATE_LIMITS", parse_rate_limit, Settings.kite_quote_rate_limits),
        instruments_url=_parse(source, "INSTRUMENTS_URL", _url, Settings.instruments_url),
        order_rate_limits=_parse(source, "ORDER_RATE_LIMITS", _text, Settings.order_rate_limits),
        auto_entry_pct=_parse(source, "AUTO_ENTRY_PCT", _percentage, Decimal("4")),
        auto_target_pct=_parse(source, "AUTO_TARGET_PCT", _percentage, Decimal("1")),
        auto_sl_pct=_parse(source, "AUTO_SL_PCT", _percentage, Decimal("1")),
        oco_poll_seconds=_parse(source, "OCO_POLL_SECONDS", _positive_seconds, 2.0),
        dedupe_window_seconds=_parse(source, "DEDUPE_WINDOW_SECONDS", _non_negative_int, 60),
        settle_seconds=_parse(source, "SETTLE_SECONDS", _positive_seconds, 10.0),
        rate_limit_storage_uri=_parse(source, "RATE_LIMIT_STORAGE_URI", _storage_uri, "memory://"),
        rate_limit=_parse(source, "RATE_LIMIT", parse_rate_limit, DEFAULT_RATE_LIMIT),
        rate_limit_enabled=_parse(source, "RATE_LIMIT_ENABLED", parse_bool, True),
        failed_key_limit=_parse(source, "FAILED_KEY_LIMIT", parse_rate_limit, DEFAULT_FAILED_KEY_LIMIT),
        trusted_proxies=_parse(source, "TRUSTED_PROXIES", parse_trusted_proxies, 0),
        allowed_ips=_parse(source, "ALLOWED_IPS", parse_allowed_ips, ()),
        notify_urls=_parse(source, "NOTIFY_URLS", _notify_urls, ()),
        notify_events=_parse(source, "NOTIFY_EVENTS", _notify_events, DEFAULT_EVENTS),
        notify_timeout=_parse(source, "NOTIFY_TIMEOUT", _positive_seconds, 10.0),
        dashboard_session_hours=_parse(source, "DASHBOARD_SESSION_HOURS", _session_hours, 12.0),
    )
