"""What the broker sees of the order pacer: arrival times counted by the fake."""
from __future__ import annotations


def most_in_any_second(times: list[float]) -> int:
    """The most arrivals in any one-second window (each window starts at an arrival)."""
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times)), default=0)
