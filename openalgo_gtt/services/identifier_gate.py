"""How many argon2 checks a public key identifier may cost (services/apikeys.py): the
identifier before the dot is not secret, so wrong secrets sent on it must not buy unbounded
argon2 work, nor stall the right key."""
from __future__ import annotations

import threading
from collections import OrderedDict, deque

IDENTIFIER_TABLE_SIZE = 10_000  # identifiers remembered, oldest dropped first


class IdentifierGate:
    """argon2 checks per public identifier, in this process: one at a time, and at most `limit`
    wrong ones in a moving window of `window` seconds. A check claims its turn atomically (the
    in-flight mark and the count are taken under one lock), so concurrent wrong secrets cannot
    run more checks than the limit."""

    def __init__(self, limit: int, window: float, clock):
        self._limit, self._window, self._clock = limit, window, clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._running: set[str] = set()

    def enter(self, identifier: str) -> int | None:
        """None when the check may run (it is then marked running: call `leave`), else the whole
        seconds until it might."""
        with self._lock:
            now = self._clock()
            times = self._failures.get(identifier)
            if times is not None:
                while times and times[0] <= now - self._window:
                    times.popleft()
            if identifier in self._running:
                return 1
            if times is not None and len(times) >= self._limit:
                return max(1, int(times[0] + self._window - now + 0.999))
            self._running.add(identifier)
            return None

    def leave(self, identifier: str, *, wrong: bool) -> None:
        with self._lock:
            self._running.discard(identifier)
            if not wrong:
                return
            times = self._failures.setdefault(identifier, deque())
            times.append(self._clock())
            self._failures.move_to_end(identifier)
            while len(self._failures) > IDENTIFIER_TABLE_SIZE:
                self._failures.popitem(last=False)
