"""Per-caller rate limits: exact windows, a breach that says when to come back, and a storage
outage that neither refuses trading nor costs every request a timeout."""
from __future__ import annotations

import time

from openalgo_gtt.services.abuse import CallerLimits


def test_the_window_refuses_the_request_over_the_limit_and_says_when_to_retry():
    limits = CallerLimits("3 per minute", "memory://", "test")
    assert [limits.breach("key:a") for _ in range(3)] == [None, None, None]
    breach = limits.breach("key:a")
    assert 58 <= breach.retry_after <= 60
    assert str(breach.limit) == "3 per 1 minute"
    assert limits.breach("key:b") is None  # each caller has its own window
    assert limits.breach("addr:10.0.0.1") is None  # and so has each address


def test_every_window_of_the_limit_applies():
    limits = CallerLimits("2 per second;3 per minute", "memory://", "test")
    assert limits.breach("key:a") is None and limits.breach("key:a") is None
    assert limits.breach("key:a") is not None  # the per-second window is full
    time.sleep(1.05)
    assert limits.breach("key:a") is None  # room in the second again, the third of the minute
    time.sleep(1.05)
    assert limits.breach("key:a").retry_after > 50  # now the minute is full


def test_a_storage_outage_counts_in_memory_and_leaves_the_storage_alone_for_a_while(monkeypatch):
    limits = CallerLimits("2 per minute", "redis://127.0.0.1:1/0", "test")  # nothing listens there
    calls = []
    original = limits._shared.hit

    def counting_hit(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(limits._shared, "hit", counting_hit)
    assert limits.breach("key:a") is None  # trading goes on
    assert limits.breach("key:a") is None
    assert limits.breach("key:a") is not None  # and the limit still holds, in memory
    assert len(calls) == 1  # the storage was tried once, then left alone
