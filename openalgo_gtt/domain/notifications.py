"""What the trader is told: an event (something that happened to a GTT, the token or the day's
trades), its message as a phone shows it, and how notification URLs are shown without their
secrets. Pure: no I/O, no clock (the time is part of the event).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from openalgo_gtt.domain.clock import IST, as_utc
from openalgo_gtt.domain.fill import describe, fill_from_json
from openalgo_gtt.domain.model import EventKind, EventLevel

# Placed, modified and cancelled through the API are not notified by default: the caller knows.
API_EVENTS = frozenset({EventKind.PLACED, EventKind.MODIFIED, EventKind.CANCELLED})
DEFAULT_EVENTS = tuple(kind.value for kind in EventKind if kind not in API_EVENTS)


@dataclass(frozen=True)
class Event:
    """One thing worth telling the trader. GTT events carry the trigger's OpenAlgo symbol,
    exchange, action, quantity and trigger prices; `leg` names the rule or OCO leg (entry, target,
    stoploss), `broker_id` Upstox's GTT id, `order_id` the order a fired rule placed."""

    kind: str  # EventKind
    at: datetime  # when the gateway learned of it (UTC)
    trigger_id: str | None = None
    symbol: str | None = None
    exchange: str | None = None
    action: str | None = None
    quantity: int | None = None
    triggers: tuple[str, ...] = ()  # trigger prices as exact strings
    direction: str | None = None  # ABOVE | BELOW, for a single trigger price
    leg: str | None = None
    broker_id: str | None = None
    order_id: str | None = None
    message: str | None = None  # the broker's words, or the gateway's
    extra: dict = field(default_factory=dict)  # kind-specific facts (the token's expiry, the limit)

    def to_json(self) -> dict:
        data = asdict(self)
        data["at"] = as_utc(self.at).isoformat()
        data["triggers"] = list(self.triggers)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Event":
        values = dict(data)
        values["at"] = datetime.fromisoformat(values["at"])
        values["triggers"] = tuple(values.get("triggers") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def trigger_event(kind: str, at: datetime, trigger, message: str | None = None) -> Event:
    """An event about a whole trigger (placed, modified, cancelled, found late, outcome unknown)
    from its record: anything with trigger_id, symbol, exchange, action, quantity and legs (a
    `RecordedTrigger`, or a place's order values as an object)."""
    legs = list(getattr(trigger, "legs", None) or ())
    triggers = tuple(str(leg["trigger_price"]) for leg in legs if leg.get("trigger_price") is not None)
    direction = legs[0].get("trigger_type") if len(legs) == 1 else None
    return Event(kind=kind, at=at, trigger_id=trigger.trigger_id, symbol=trigger.symbol, exchange=trigger.exchange,
                 action=trigger.action, quantity=trigger.quantity, triggers=triggers,
                 direction=direction if direction in ("ABOVE", "BELOW") else None, message=message)


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    level: str  # EventLevel

    @property
    def line(self) -> str:
        """The message on one line (the event list of an order status, the logs)."""
        return f"{self.title}: {self.body.splitlines()[0]}" if self.body else self.title


_TITLES = {
    EventKind.TRIGGERED: ("GTT triggered", EventLevel.SUCCESS),
    EventKind.ORDER_DONE: ("GTT order filled", EventLevel.SUCCESS),  # titled by its fill (_order_done_title)
    EventKind.REJECTED: ("GTT rejected", EventLevel.FAILURE),
    EventKind.EXPIRED: ("GTT expired", EventLevel.WARNING),
    EventKind.CANCELLED_AT_BROKER: ("GTT cancelled at the broker", EventLevel.WARNING),
    EventKind.OCO_SETTLED: ("OCO settled", EventLevel.INFO),
    EventKind.OCO_BOTH_FIRED: ("OCO: both legs fired", EventLevel.FAILURE),
    EventKind.FOUND_LATE: ("GTT found at the broker after a lost answer", EventLevel.WARNING),
    EventKind.OUTCOME_UNKNOWN: ("GTT place outcome unknown", EventLevel.FAILURE),
    EventKind.QUEUED_PLACED: ("Queued GTT placed", EventLevel.SUCCESS),
    EventKind.DAILY_LIMIT_REACHED: ("Daily trade limit reached", EventLevel.WARNING),
    EventKind.TOKEN_EXPIRING: ("Upstox token expires tonight", EventLevel.WARNING),
    EventKind.TOKEN_REJECTED: ("Upstox rejected the token", EventLevel.FAILURE),
    EventKind.PLACED: ("GTT placed", EventLevel.INFO),
    EventKind.MODIFIED: ("GTT modified", EventLevel.INFO),
    EventKind.CANCELLED: ("GTT cancelled", EventLevel.INFO),
}


def _price(text: str) -> str:
    """A price as a trader reads it: at least two decimals (1620.00, 9.60), never fewer digits
    than it has (a tick of 0.005 shows 9.615)."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        return str(text)
    if not value.is_finite():
        return str(text)
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value.normalize())


def _what(event: Event) -> str:
    """"BUY 10 IDEA (NSE) above 9.61", as much of it as the event knows."""
    parts = [p for p in (event.action, None if event.quantity is None else str(event.quantity), event.symbol) if p]
    text = " ".join(parts)
    if event.exchange:
        text += f" ({event.exchange})"
    if event.triggers:
        prices = " / ".join(_price(price) for price in event.triggers)
        text += f" {event.direction.lower()} {prices}" if event.direction and len(event.triggers) == 1 \
            else f" at {prices}"
    return text.strip()


def _ids(event: Event) -> str:
    ids = event.trigger_id or ""
    if event.leg and event.leg not in ("single", "entry") or event.broker_id and event.broker_id != event.trigger_id:
        leg = f"{event.leg} leg" if event.leg else "leg"
        ids += f" ({leg}{' ' + event.broker_id if event.broker_id and event.broker_id != event.trigger_id else ''})"
    if event.order_id:
        ids += f", order {event.order_id}"
    return ids.strip()


_ORDER_ENDED = {"REJECTED": ("GTT order rejected", EventLevel.FAILURE),
                "CANCELLED": ("GTT order cancelled", EventLevel.WARNING)}


def render(event: Event) -> Message:
    """The message for a phone: a title, a short body (what, ids, the fired order's fill, the
    broker's words, the time in IST) and the level. E.g. "GTT triggered" / "BUY 10 IDEA (NSE)
    above 9.61 — GTT-S26120200000022, order 251202000123" / "bought 10 IDEA at 9.61"."""
    title, level = _TITLES.get(event.kind, (str(event.kind), EventLevel.INFO))
    fill = event.extra.get("fill") if isinstance(event.extra, dict) else None
    fill = fill_from_json(fill) if isinstance(fill, dict) else None
    if event.kind == EventKind.ORDER_DONE and fill is not None:
        title, level = _ORDER_ENDED.get(fill.status, (title, level))
    first = " — ".join(p for p in (_what(event), _ids(event)) if p)
    lines = [first] if first else []
    if fill is not None:
        lines.append(describe(fill, event.action, event.symbol, event.quantity))
    if event.message:
        lines.append(event.message)
    lines.append(as_utc(event.at).astimezone(IST).strftime("%Y-%m-%d %H:%M:%S IST"))
    return Message(title, "\n".join(lines), level)


# --- notification URLs ----------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s,]+")
# A host part that names a server (a dot, a port-less "localhost", an IP) rather than carrying a
# token (Telegram's bot token, ntfy's topic and Discord's webhook id all sit where a host would).
_SERVER_HOST = re.compile(r"^(localhost|\[[0-9a-f:]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)(:\d+)?$")


def split_urls(raw: str) -> tuple[str, ...]:
    """NOTIFY_URLS: Apprise URLs separated by spaces or commas. A URL's own commas (Apprise
    accepts several targets in one URL, `to=a,b`) must be written as %2C."""
    return tuple(part for part in _SEPARATORS.split(raw.strip()) if part)


def mask_url(url: str) -> str:
    """A URL as logs, health and the CLI show it: its scheme and, when it names a server, the
    host, never a credential, token or path: `json://user:pw@host:8080/x` -> `json://host:8080`,
    `tgram://123:abc/456` -> `tgram://…`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "…"
    scheme = parts.scheme or "?"
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{scheme}://{host}" if _SERVER_HOST.match(host) else f"{scheme}://…"


def secrets_of(url: str) -> list[str]:
    """Every part of `url` that could be a secret (user, password, tokens, path segments, query
    values), longest first, to scrub from error text a library may have built from the URL."""
    shown = mask_url(url)
    body = url.split("://", 1)[-1]
    pieces = {p for p in re.split(r"[/:@?&=#,;]+", body) if len(p) >= 4 and p not in shown}
    return sorted(pieces, key=len, reverse=True)


def redact(text: str, urls: tuple[str, ...] | list[str]) -> str:
    """`text` with every URL's secret parts replaced by "…"."""
    for url in urls:
        text = text.replace(url, mask_url(url))
        for secret in secrets_of(url):
            text = text.replace(secret, "…")
    return text
