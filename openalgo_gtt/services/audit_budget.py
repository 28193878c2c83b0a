"""How much of the audit a caller without a valid key may fill: a bounded amount a minute.

Every request still leaves exactly one audit record; what changes is that, past a budget, the
requests of a caller without a valid key share one: in each minute (a fixed window of
WINDOW_SECONDS), from one client address, the first PER_ADDRESS are written one by one, with
their bodies (already cut to 4 KiB), and every one after that is counted into that address's
summary row for the minute, written when the minute ends: "N more requests without a valid key
from ADDRESS", with the count, the statuses, the methods and the busiest paths. Across every
address together at most TOTAL rows are written one by one a minute, and at most SUMMARIES
addresses get a summary of their own; the rest share one summary row for the minute.

So whatever callers without a key send, one process writes at most TOTAL + SUMMARIES + 1 rows a
minute for them (SECURITY.md has the bytes, measured), and one address at most PER_ADDRESS + 1.
Requests that present a valid key, and accepted webhooks and login callbacks (which prove a
secret of their own), are never summarised. Counts are per process (one process by default).
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.records import AuditEntry

WINDOW_SECONDS = 60.0
PER_ADDRESS = 20
TOTAL = 120
SUMMARIES = 60
_TOP_PATHS = 5
SUMMARY_ENDPOINT = "(summary)"


@dataclass
class _Held:
    """The requests of one address (or of every address past SUMMARIES) counted, not written."""

    count: int = 0
    statuses: Counter = field(default_factory=Counter)
    methods: Counter = field(default_factory=Counter)
    paths: Counter = field(default_factory=Counter)
    addresses: set = field(default_factory=set)
    first_at: datetime | None = None
    last_at: datetime | None = None

    def add(self, entry: AuditEntry) -> None:
        self.count += 1
        self.statuses[str(entry.http_status)] += 1
        self.methods[entry.method] += 1
        if entry.endpoint in self.paths or len(self.paths) < 4 * _TOP_PATHS:  # bounded, the busiest kept
            self.paths[entry.endpoint] += 1
        if len(self.addresses) < 10_000:
            self.addresses.add(entry.client_addr)
        self.first_at = self.first_at or entry.created_at
        self.last_at = entry.created_at


@dataclass
class _Window:
    index: int
    written: Counter = field(default_factory=Counter)  # address -> rows written one by one
    written_total: int = 0
    held: dict = field(default_factory=dict)  # address -> _Held (at most SUMMARIES)
    others: _Held = field(default_factory=_Held)


def summary_entry(address: str | None, held: _Held) -> AuditEntry:
    """The one row that stands for `held.count` requests."""
    who = address if address is not None else f"{len(held.addresses)} other addresses"
    body = {"summary": {
        "requests": held.count, "client_addr": who,
        "statuses": dict(held.statuses.most_common()), "methods": dict(held.methods.most_common()),
        "paths": dict(held.paths.most_common(_TOP_PATHS)),
        "first_at": held.first_at.isoformat() if held.first_at else None,
        "last_at": held.last_at.isoformat() if held.last_at else None,
    }}
    status = int(held.statuses.most_common(1)[0][0]) if held.statuses else 0
    return AuditEntry(
        request_id=str(uuid.uuid4()), created_at=utcnow(), method=held.methods.most_common(1)[0][0][:8] if held.methods
        else "-", endpoint=SUMMARY_ENDPOINT, client_addr=address, api_key_name=None, request_body=body,
        response_body=None, http_status=status, latency_ms=0.0, broker_calls=[],
        error=(f"{held.count} more requests without a valid key from {who} in this minute: counted in this row, "
               f"not recorded one by one"), traceback=None)


class AuditBudget:
    """The per-minute budget (see the module's docstring). `admit` says whether a request's row
    is written whole; `hold` counts one that is not; `due` hands out the summaries of the minutes
    that have ended (`due(everything=True)`: every summary, at shutdown)."""

    def __init__(self, per_address: int = PER_ADDRESS, total: int = TOTAL, summaries: int = SUMMARIES,
                 window: float = WINDOW_SECONDS, clock=time.monotonic):
        self.per_address, self.total, self.summaries, self.window = per_address, total, summaries, window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[int, _Window] = {}

    def _current(self) -> _Window:
        index = int(self._clock() // self.window)
        current = self._windows.get(index)
        if current is None:
            current = self._windows[index] = _Window(index)
        return current

    def admit(self, address: str | None) -> bool:
        with self._lock:
            current = self._current()
            if current.written_total >= self.total or current.written[address] >= self.per_address:
                return False
            current.written[address] += 1
            current.written_total += 1
            return True

    def hold(self, entry: AuditEntry) -> None:
        with self._lock:
            current = self._current()
            address = entry.client_addr
            held = current.held.get(address)
            if held is None:
                if len(current.held) >= self.summaries:
                    held = current.others
                else:
                    held = current.held[address] = _Held()
            held.add(entry)

    def pending(self) -> int:
        """Requests counted and not yet in a summary."""
        with self._lock:
            return sum(h.count for w in self._windows.values() for h in [*w.held.values(), w.others])

    def seconds_to_next_window(self) -> float:
        return self.window - (self._clock() % self.window)

    def due(self, everything: bool = False) -> list[AuditEntry]:
        with self._lock:
            now_index = int(self._clock() // self.window)
            ended = [i for i in self._windows if everything or i < now_index]
            windows = [self._windows.pop(i) for i in sorted(ended)]
        entries = []
        for window in windows:
            entries.extend(summary_entry(address, held) for address, held in window.held.items())
            if window.others.count:
                entries.append(summary_entry(None, window.others))
        return entries
