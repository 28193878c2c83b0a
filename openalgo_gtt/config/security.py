"""The security settings' defaults and parsers (services/abuse.py re-exports them): each parser
takes the raw string and raises ValueError with a human reason."""
from __future__ import annotations

import importlib.util
import ipaddress
from urllib.parse import urlparse

# Per caller (API key, else address). Against abuse, not for pacing: a candle close's burst of
# up to 200 alerts must pass, to the queue of places (TradingView never re-sends a 4xx), and 600 a
# minute (10 a second, the broker's own order rate) still stops a runaway script.
DEFAULT_RATE_LIMIT = "200 per 10 seconds;600 per minute"
# Wrong API keys allowed per client address before further wrong keys from it get 429.
DEFAULT_FAILED_KEY_LIMIT = "20 per minute"
DEFAULT_STORAGE_URI = "memory://"
MAX_TRUSTED_PROXIES = 10


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
