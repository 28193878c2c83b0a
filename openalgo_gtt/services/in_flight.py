"""Triggers this process has answered but not yet recorded.

A place is recorded just after its answer has gone (services/place.py). A caller quick
enough to send a cancel, a modify or a status for the new trigger id in that millisecond must
still find the record, so those wait here for it first. Nothing waits when nothing is in flight.
"""
from __future__ import annotations

import threading
import time

WAIT_SECONDS = 5.0  # far longer than a record takes; bounded so a stuck write cannot hang callers


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Event] = {}

    def hold(self, trigger_id: str) -> None:
        with self._lock:
            self._pending[trigger_id] = threading.Event()

    def release(self, trigger_id: str) -> None:
        with self._lock:
            done = self._pending.pop(trigger_id, None)
        if done is not None:
            done.set()

    def wait_for(self, trigger_id: str, timeout: float = WAIT_SECONDS) -> None:
        """Until `trigger_id` is recorded (at once when it is not in flight)."""
        done = self._pending.get(trigger_id)
        if done is not None:
            done.wait(timeout)

    def wait_for_all(self, timeout: float = WAIT_SECONDS) -> None:
        """Until every trigger in flight now is recorded."""
        if not self._pending:
            return
        with self._lock:
            pending = list(self._pending.values())
        deadline = time.monotonic() + timeout
        for done in pending:
            done.wait(max(0.0, deadline - time.monotonic()))
