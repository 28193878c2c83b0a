"""One deadline for everything a request asks of the broker.

A caller waits for the whole request, not for one HTTP call: TradingView gives up after 3
seconds. The API gives each request a budget (UPSTOX_TIMEOUT) that starts with its first use:
from then, pacing waits, quotes, the place and any look-up share it. The broker clients shorten
each call's timeout and each pacing wait to what is left, and send no call once nothing is left.
Work outside a request (the watcher) has no deadline: each call has its own timeout.
"""
from __future__ import annotations

import time
from contextvars import ContextVar

# [budget in seconds, deadline on the monotonic clock once the first broker call asked]
_budget: ContextVar[list | None] = ContextVar("broker_deadline", default=None)

# The time an order call needs after its pacing slot. A slot later than this before the
# deadline would be taken and then wasted (no time left to send and hear the answer), so no
# pacing wait reaches into it: the place is queued (services/place.py) or refused instead.
SEND_RESERVE = 1.0


def start(seconds: float) -> None:
    """This thread's request may spend `seconds` at the broker, counted from its first use."""
    _budget.set([seconds, None])


def clear() -> None:
    _budget.set(None)


def remaining() -> float | None:
    """Seconds left (never below 0), or None outside a request."""
    budget = _budget.get()
    if budget is None:
        return None
    if budget[1] is None:
        budget[1] = time.monotonic() + budget[0]
    return max(0.0, budget[1] - time.monotonic())


def leaves_time_after(pause: float) -> bool:
    """Whether a call could still be sent after pausing `pause` seconds (always, outside a request):
    a retry that could not is not waited for."""
    left = remaining()
    return left is None or left - pause > 0.05


def pacing_wait(longest: float | None) -> float | None:
    """How long an order call may wait for its pacing slot: at most `longest`, and, within a
    request, only as long as leaves SEND_RESERVE for the call (a slot due now is always taken)."""
    left = remaining()
    if left is None:
        return longest
    within = max(0.0, left - SEND_RESERVE)
    return within if longest is None else min(longest, within)


def bounded(seconds: float | None) -> float | None:
    """`seconds`, shortened to what is left (None: no bound of its own)."""
    left = remaining()
    if left is None:
        return seconds
    return left if seconds is None else min(seconds, left)
