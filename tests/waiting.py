"""Waiting, in tests that coordinate real threads: for a condition, never for a fixed time."""
from __future__ import annotations

import time

HANG_GUARD = 30.0  # seconds; only a broken build ever waits this long


def until(condition, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.001)
