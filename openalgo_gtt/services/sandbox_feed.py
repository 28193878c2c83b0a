"""Prices into the sandbox broker: ticks pushed over HTTP or replayed from a CSV file.

Ticks are applied one at a time and every GTT a tick fires is settled at once (an OCO's other
leg is cancelled before the next tick), so in the sandbox an OCO can never fire both legs. The
broker is reached through the `TickSink` interface (`brokers/base.py`), never a concrete class.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable, Iterator

from openalgo_gtt.brokers.base import FiredEvent, Tick, TickSink
from openalgo_gtt.domain.clock import IST
from openalgo_gtt.domain.errors import DomainError


@dataclass(frozen=True)
class PriceTick:
    """A tick as a caller names it: OpenAlgo symbol and exchange."""

    symbol: str
    exchange: str
    ltp: Decimal
    open: Decimal | None = None
    at: datetime | None = None  # a replayed file's time: paces the replay, nothing else


class NotSandbox(Exception):
    """Ticks only drive the sandbox broker."""


def push_ticks(gateway, ticks: Iterable[PriceTick]) -> list[FiredEvent]:
    """Apply ticks in order; returns the fired events (each rule that filled)."""
    broker = gateway.broker
    if not isinstance(broker, TickSink):
        raise NotSandbox("ticks drive the sandbox broker only; this gateway trades on Upstox (BROKER=upstox)")
    fired_all: list[FiredEvent] = []
    for tick in ticks:
        instrument = gateway.instruments.lookup(tick.symbol, tick.exchange)
        # The broker's own clock stamps every tick, so a replay and the same ticks pushed by hand
        # produce the same outcomes.
        fired = broker.apply_ticks([Tick(instrument.instrument_key, tick.ltp, tick.open)])
        # The watcher does not poll the sandbox: what a tick fired (or expired) is recorded now,
        # with the events it gives the trader, in one transaction.
        changed = list(dict.fromkeys([event.gtt_id for event in fired] + broker.take_expired()))
        if changed:
            gateway.watcher.settle_broker_gtts(changed)
        fired_all.extend(fired)
    return fired_all


def _decimal(raw: str, what: str, line: int) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except (InvalidOperation, AttributeError):
        raise DomainError(f"line {line}: {what} {raw!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise DomainError(f"line {line}: {what} must be a positive number")
    return value


def _timestamp(raw: str, line: int) -> datetime:
    text = raw.strip()
    try:
        if text.replace(".", "", 1).isdigit():  # epoch seconds (or milliseconds)
            seconds = float(text)
            return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, timezone.utc)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DomainError(f"line {line}: timestamp {raw!r} is neither ISO 8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)  # an Indian market's file: naive times are IST
    return moment


def read_replay_csv(path: Path) -> Iterator[PriceTick]:
    """Rows of `timestamp,symbol,exchange,ltp` (a header row is optional)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].strip().startswith("#"):
                continue
            if line == 1 and row[0].strip().lower() in ("timestamp", "time", "ts"):
                continue
            if len(row) < 4:
                raise DomainError(f"line {line}: expected timestamp,symbol,exchange,ltp")
            yield PriceTick(symbol=row[1].strip(), exchange=row[2].strip(), ltp=_decimal(row[3], "ltp", line),
                            at=_timestamp(row[0], line))
