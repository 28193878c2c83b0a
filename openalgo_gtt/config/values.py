"""Value parsers: each takes the raw string of one variable and raises ValueError with a human
reason (loading.py turns it into a ConfigError naming the variable)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Callable

from openalgo_gtt.config.settings import BROKERS
from openalgo_gtt.domain.model import EventKind
from openalgo_gtt.domain.notifications import DEFAULT_EVENTS, split_urls


def whole_number(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None


def positive_int(raw: str) -> int:
    value = whole_number(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def non_negative_int(raw: str) -> int:
    value = whole_number(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive whole number")
    return value


def port(raw: str) -> int:
    value = whole_number(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not 0 < value <= 600:
        raise ValueError("must be a number of seconds greater than 0 and at most 600")
    return value


def session_hours(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of hours") from None
    if not 0 < value <= 24 * 30:  # NaN fails this too
        raise ValueError("must be a number of hours greater than 0 and at most 720 (30 days)")
    return value


def timeout_seconds(raw: str) -> int:
    value = whole_number(raw)
    if not 1 <= value <= 3600:
        raise ValueError("must be a whole number of seconds from 1 to 3600")
    return value


def percentage(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not value.is_finite() or not 0 < value < 100:
        raise ValueError("must be a percentage greater than 0 and less than 100")
    return value


def rupees(raw: str) -> Decimal:
    """A positive amount of rupees, to the paisa at most (SANDBOX_CAPITAL)."""
    try:
        value = Decimal(raw.strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise ValueError("must be an amount of rupees, such as 1000000") from None
    if not value.is_finite() or value <= 0 or value > Decimal("1e12"):
        raise ValueError("must be a positive amount of rupees, at most 1e12")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("must be whole paise (at most 2 decimals)")
    return value


def price_source(raw: str) -> str:
    """SANDBOX_PRICES: manual | upstox | kite."""
    value = raw.strip().lower()
    if value not in ("manual", "upstox", "kite"):
        raise ValueError("must be manual, upstox or kite")
    return value


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower() if choices == BROKERS else raw.strip().upper()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def storage_uri(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("memory://", "redis://", "rediss://")):
        raise ValueError("must be memory://, or a redis:// or rediss:// URI")
    return value


def redirect_uri(raw: str) -> str:
    value = raw.strip()  # kept exactly (a trailing slash included): Upstox compares it verbatim
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def notify_urls(raw: str) -> tuple[str, ...]:
    urls = split_urls(raw)
    for position, one in enumerate(urls, start=1):
        scheme, sep, rest = one.partition("://")
        if not sep or not scheme or not rest:
            raise ValueError(f"URL {position} is not an Apprise URL (scheme://...); separate URLs with spaces "
                             "or commas, and write a comma inside a URL as %2C")
    return urls


def notify_events(raw: str) -> tuple[str, ...]:
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
