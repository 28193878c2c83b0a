"""Client-side pacing of order calls, so a burst waits its turn instead of collecting 429s.

Upstox counts every order API call of a user together (GTT included): 10 per second, 500 per
minute and 2000 per 30 minutes for a regular algo. What Upstox counts is when a call arrives, so
the pacer hands out send times, not permissions:

- One schedule of send slots, kept in this process's memory or, for several worker processes
  and hosts, in Redis (one Lua script, on Redis's own clock, so every host sees the same time).
  A new slot goes after every slot already given, and no earlier than the `limit`-th latest
  slot plus the window's span, for every window. So any `limit + 1` consecutive slots span more
  than the window, whoever took them.
- Each window's span is stretched by `SEND_MARGIN`, and a caller that wakes up more than
  `LATE_TOLERANCE` after its slot (a busy CPU, a long GIL switch) does not send in it: it takes
  a new one. The transport (http.py) waits for the slot only once the request is fully built,
  so nothing but the write follows it: a call leaves within LATE_TOLERANCE of its slot, and the
  rest of the margin covers the network, so no second at Upstox ever sees more than the limit.
  (A call the network holds longer, such as a new connection's lost first packet, which the
  kernel retries a second later, is beyond any client's schedule: Upstox answers it 429, nothing
  done.)
- A slot that goes unused is given back (`Slot.give_back`): a caller that woke too late, a call
  whose request ran out of time before the send, a place that holds slots for its calls and then
  does not make them. Removing a slot no call went out in never lets more calls through than
  the limit, and the capacity goes to the next caller instead of being lost.
- `hold` takes the slots of several calls ahead (a place's one or two order calls) within a
  bound, all or none, so a place begins only what it can send in time; the calls then use the
  held slots (`acquire` takes a held slot first) and `SlotHold` gives back what they did not use.
- When Redis fails (down, or slower than a second), the process paces on its own memory for
  `STORAGE_PAUSE` seconds, then tries Redis again: pacing never stops trading, and a Redis
  that hangs costs one call a second, not every call its budget. Meanwhile several workers
  may together exceed the limit; Upstox answers the excess 429, which did nothing (a place
  retries it within its budget), as the caller rate limits do (api/ratelimits.py).

One `OrderPacer` must be shared by every broker client of the process; a Redis storage URI
shares its schedule with every process that uses the same URI and key.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Protocol

from limits import parse_many

from openalgo_gtt.brokers.errors import PacingTimeout

log = logging.getLogger(__name__)

DEFAULT_ORDER_RATES = "10/second;500/minute;2000/30 minutes"

# Every window is enforced over its span plus this: the time a call may take from its slot to
# its arrival at the broker (the wake-up allowed below, the rest for the network). It costs
# rate: ten calls per 1.04 s is 9.6 a second of Upstox's 10 (0.2 s cost a sixth of it).
SEND_MARGIN = 0.04
# A caller that wakes later than this after its slot gives it back and takes a new one instead
# of sending; the write follows the wake-up at once (http.py), so it leaves within this, and the
# rest of the margin is the network's.
LATE_TOLERANCE = 0.02
# After the shared schedule fails, pace in this process's memory this long before trying it again.
STORAGE_PAUSE = 30.0
# A Redis round trip slower than this is a failure: the call paces in memory instead.
REDIS_TIMEOUT = 1.0

Windows = list[tuple[int, float]]  # (calls allowed, span in seconds)


class ScheduleUnavailable(Exception):
    """The shared schedule could not be read or written (Redis down or too slow)."""


GiveBack = Callable[[], None]


class SlotSchedule(Protocol):
    def reserve(self, windows: Windows, max_wait: float | None) -> tuple[float, GiveBack] | None:
        """Take the next send slot: the seconds until it (0 when it is now) and how to give it
        back unused; or None, taking nothing, when it lies more than `max_wait` seconds away."""


class MemorySchedule:
    """The schedule of one process, on its monotonic clock."""

    def __init__(self) -> None:
        self._slots: deque[float] = deque()
        self._lock = threading.Lock()

    def reserve(self, windows: Windows, max_wait: float | None) -> tuple[float, GiveBack] | None:
        with self._lock:
            now = time.monotonic()
            longest = max(span for _, span in windows)
            slots = self._slots
            while slots and slots[0] <= now - longest:
                slots.popleft()
            slot = max(now, slots[-1]) if slots else now
            for limit, span in windows:
                if len(slots) >= limit:
                    slot = max(slot, slots[-limit] + span)
            if max_wait is not None and slot - now > max_wait:
                return None
            slots.append(slot)  # never before the last one: the deque stays in order
            return slot - now, lambda: self._give_back(slot)

    def _give_back(self, slot: float) -> None:
        with self._lock:
            try:
                self._slots.remove(slot)
            except ValueError:  # already past the longest window and dropped
                pass


# KEYS: the schedule (a sorted set of slot times), its member counter. ARGV: max wait (< 0: no
# limit), then (limit, span) per window. Returns {taken (1/0), seconds until the slot, member}.
_RESERVE = """
local schedule, counter = KEYS[1], KEYS[2]
local max_wait = tonumber(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local longest = 0
for i = 2, #ARGV, 2 do longest = math.max(longest, tonumber(ARGV[i + 1])) end
redis.call('ZREMRANGEBYSCORE', schedule, '-inf', now - longest)
local slot = now
local last = redis.call('ZRANGE', schedule, -1, -1, 'WITHSCORES')
if #last > 0 then slot = math.max(slot, tonumber(last[2])) end
local taken = redis.call('ZCARD', schedule)
for i = 2, #ARGV, 2 do
  local limit, span = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if taken >= limit then
    local nth = redis.call('ZRANGE', schedule, -limit, -limit, 'WITHSCORES')
    slot = math.max(slot, tonumber(nth[2]) + span)
  end
end
if max_wait >= 0 and slot - now > max_wait then return {0, tostring(slot - now), ''} end
local member = redis.call('INCR', counter)
redis.call('ZADD', schedule, slot, member)
local ttl = math.ceil((slot - now + longest) * 1000) + 60000
redis.call('PEXPIRE', schedule, ttl)
redis.call('PEXPIRE', counter, ttl)
return {1, tostring(slot - now), tostring(member)}
"""


class RedisSchedule:
    """The schedule shared through Redis by every process and host using the same key."""

    def __init__(self, uri: str, key: str) -> None:
        import redis  # the server extra; only a Redis URI needs it

        self._errors = redis.RedisError
        client = redis.Redis.from_url(uri, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
        self._client = client
        self._script = client.register_script(_RESERVE)
        # One hash tag: both keys live in one slot should the server be a cluster.
        self._keys = [f"{{openalgo-gtt:pacer:{key}}}:slots", f"{{openalgo-gtt:pacer:{key}}}:seq"]

    def reserve(self, windows: Windows, max_wait: float | None) -> tuple[float, GiveBack] | None:
        args: list[float] = [-1.0 if max_wait is None else max_wait]
        for limit, span in windows:
            args += [limit, span]
        try:
            taken, wait, member = self._script(keys=self._keys, args=args)
        except self._errors as exc:
            raise ScheduleUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not int(taken):
            return None
        return float(wait), lambda: self._give_back(member)

    def _give_back(self, member: bytes) -> None:
        try:
            self._client.zrem(self._keys[0], member)
        except self._errors as exc:  # the slot stays taken: pacing only stricter for a moment
            log.warning("order pacer: could not give a slot back (%s)", exc)


def schedule_for(storage_uri: str, key: str) -> SlotSchedule:
    if storage_uri.startswith("memory://"):
        return MemorySchedule()
    if storage_uri.startswith(("redis://", "rediss://")):
        return RedisSchedule(storage_uri, key)
    raise ValueError(f"the order pacer needs memory:// or a redis:// URI, not {storage_uri.split(':', 1)[0]}")


@dataclass
class Slot:
    """One send slot taken. Never sent in before `not_before` (the schedule's reply plus its
    wait); late once more than LATE_TOLERANCE after `due` (the moment of asking plus the wait,
    the earliest the slot can be: a slow reply counts as lateness)."""

    due: float
    not_before: float
    _give_back: GiveBack
    used: bool = False

    def arrive(self) -> bool:
        """Sleep until the slot; whether it is still the caller's to send in (woken within
        LATE_TOLERANCE of it). A slot that is not is given back."""
        delay = self.not_before - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() - self.due <= LATE_TOLERANCE:
            self.used = True
            return True
        self.give_back()
        return False

    def give_back(self) -> None:
        """No call goes out in this slot: it returns to the schedule for another caller."""
        if not self.used:
            self.used = True  # given once
            self._give_back()


@dataclass
class SlotHold:
    """Slots taken ahead of the calls that use them (see OrderPacer.hold). Inside `with`, this
    thread's calls through the same pacer take these slots first; on leaving, the unused ones
    are given back."""

    pacer: "OrderPacer | None"
    slots: list[Slot] = field(default_factory=list)
    _token: object = None

    def __enter__(self) -> "SlotHold":
        self._token = _HELD.set(self)
        return self

    def __exit__(self, *_exc) -> None:
        _HELD.reset(self._token)
        for slot in self.slots:
            slot.give_back()
        self.slots = []

    def take(self, pacer: "OrderPacer") -> Slot | None:
        if pacer is self.pacer and self.slots:
            return self.slots.pop(0)
        return None


_HELD: ContextVar[SlotHold | None] = ContextVar("held_order_slots", default=None)


def unpaced() -> SlotHold:
    """The hold of a broker without a pacer (the sandbox): every call may go at once."""
    return SlotHold(None)


class OrderPacer:
    """Blocks each order call until its send slot; see the module doc.

    `rates` is a `limits` rate string ("10/second;500/minute"); `storage_uri` is "memory://" or a
    Redis URI to share the schedule between processes; `key` names the schedule (one per
    Upstox user).
    """

    def __init__(self, rates: str = DEFAULT_ORDER_RATES, *, storage_uri: str = "memory://",
                 key: str = "upstox-orders") -> None:
        items = parse_many(rates)
        if not items:
            raise ValueError(f"no rate limits in {rates!r}")
        self.rates = rates
        self.windows: Windows = [(item.amount, item.get_expiry() + SEND_MARGIN) for item in items]
        self._schedule = schedule_for(storage_uri, key)
        self._fallback = MemorySchedule()  # while the shared schedule is unavailable
        self._paused_until = 0.0
        self._pause_lock = threading.Lock()

    def acquire(self, timeout: float | None = None) -> Slot:
        """Wait for a send slot (a held one first, see `hold`); returns it once due. Raises
        `PacingTimeout`, having taken nothing, when no slot is free within `timeout` seconds
        (None waits as needed)."""
        held = _HELD.get()
        slot = held.take(self) if held is not None else None
        if slot is not None and slot.arrive():
            return slot
        started = time.monotonic()
        deadline = None if timeout is None else started + max(timeout, 0.0)
        while True:
            slot = self.reserve(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if slot is None:
                raise PacingTimeout(f"order pacer: no room within {timeout}s at {self.rates}",
                                    may_have_reached=False)
            if slot.arrive():
                return slot
            # Woke too late to send in this slot without crowding the next ones: take another.

    def hold(self, calls: int, within: float | None) -> SlotHold | None:
        """The slots of `calls` order calls, each due within `within` seconds (None: whenever),
        taken now without waiting; None, taking nothing, when they are not all to be had."""
        started = time.monotonic()
        hold = SlotHold(self)
        for _ in range(calls):
            left = None if within is None else max(0.0, within - (time.monotonic() - started))
            slot = self.reserve(left)
            if slot is None:
                for taken in hold.slots:
                    taken.give_back()
                return None
            hold.slots.append(slot)
        return hold

    def reserve(self, max_wait: float | None) -> Slot | None:
        """Take a slot without waiting for it; None when none lies within `max_wait` seconds."""
        asked = time.monotonic()
        got = self._reserve(max_wait)
        if got is None:
            return None
        # The slot lies `wait` after the moment the schedule read its clock, somewhere between
        # asking and the reply: never send before reply + wait, and judge lateness from
        # asked + wait, the earliest the slot can be, so a slow reply counts as lateness.
        wait, give_back = got
        return Slot(asked + wait, time.monotonic() + wait, give_back)

    def _reserve(self, max_wait: float | None) -> tuple[float, GiveBack] | None:
        if time.monotonic() >= self._paused_until:
            try:
                return self._schedule.reserve(self.windows, max_wait)
            except ScheduleUnavailable as exc:
                with self._pause_lock:
                    if time.monotonic() >= self._paused_until:
                        self._paused_until = time.monotonic() + STORAGE_PAUSE
                        log.warning("order pacer: the shared schedule is unavailable (%s); pacing in this "
                                    "process only for %.0f s", exc, STORAGE_PAUSE)
        return self._fallback.reserve(self.windows, max_wait)
