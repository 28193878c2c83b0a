"""One place attempt, as a state machine: the owner of "every alert becomes exactly one GTT".

A place request (its idempotency record) makes one attempt, and another each time a retry
places it afresh after the earlier one lapsed. An attempt is one stored row with a state; it
moves only along the arrows below, each move one unit of work that compare-and-sets the state
it read (there is no cycle, so the state alone tells), so a crash anywhere leaves a state the next pass can finish.

    QUEUED ──its turn (trade taken)──▶ SENDING            (a burst: no send slot in the caller's patience)
       └──the day's limit used up────────────────────────▶ REFUSED

    SENDING ──broker answered──────────────────────────────▶ RECORDED
       │  └──certainly not placed (trade given back)───────▶ REFUSED
       │  └──outcome unknown / holder died─────▶ SETTLING ──found──▶ RECORDED
       │                                           │
       └──────────────────────(stale)──────────────┤ window over, nothing found
                                                   ▼          (trade given back)
                                                LAPSED ──late GTT, counted──▶ FOUND_LATE
                                                   │  └─late GTT, cancelled─▶ CANCELLED_LATE
                                                   └──horizon over──────────▶ EXPIRED

A queued place whose send lapses is queued again (a new attempt of the same request, begun in the
unit of work of the lapse): its caller was told "queued" and will not retry, so the gateway does.

The functions here are pure: they take `now` and what was observed, and return the move: the
state to go to and the effects to carry out with it (EFFECTS, one entry an arrow). Carrying a
move out (the broker calls, the unit of work) is services/attempts.py's job.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta


class AttemptState(str, enum.Enum):
    QUEUED = "queued"  # intent written, no trade yet: sent in arrival order as the pacer allows
    SENDING = "sending"  # intent and trade written; the broker call may be running
    SETTLING = "settling"  # the broker may have the GTT: looked for until the window ends
    RECORDED = "recorded"  # the GTT is recorded and counted
    REFUSED = "refused"  # certainly nothing at the broker; the trade was given back
    LAPSED = "lapsed"  # nothing found within the window; trade given back; a late GTT is still matched
    FOUND_LATE = "found_late"  # a late GTT was recorded and counted
    CANCELLED_LATE = "cancelled_late"  # a late GTT was cancelled (a duplicate, or no trade left)
    EXPIRED = "expired"  # lapsed, and nothing turned up within the late horizon

    def __str__(self) -> str:
        return self.value


S = AttemptState
# Where the broker may still hold (or yet create) this attempt's GTT without the gateway knowing.
UNSETTLED = frozenset({S.SENDING, S.SETTLING})
WATCHED_LATE = frozenset({S.LAPSED})
WAITING = frozenset({S.QUEUED})  # nothing sent yet: it owns no GTT at the broker
OPEN = UNSETTLED | WATCHED_LATE | WAITING
FINAL = frozenset({S.RECORDED, S.REFUSED, S.FOUND_LATE, S.CANCELLED_LATE, S.EXPIRED})
# A trade is counted for the attempt in these states (taken when it began, or when found late).
COUNTED = frozenset({S.SENDING, S.SETTLING, S.RECORDED, S.FOUND_LATE})

ARROWS: dict[AttemptState, frozenset[AttemptState]] = {
    S.QUEUED: frozenset({S.SENDING, S.REFUSED}),
    S.SENDING: frozenset({S.RECORDED, S.REFUSED, S.SETTLING}),
    S.SETTLING: frozenset({S.RECORDED, S.LAPSED}),
    S.LAPSED: frozenset({S.FOUND_LATE, S.CANCELLED_LATE, S.EXPIRED}),
}


class Effect(str, enum.Enum):
    """What a move must carry out, in the same unit of work as the move itself."""

    RECORD = "record the GTT (or a staged exit as its bracket's leg)"
    ANSWER = "close the request's record with its answer"
    TAKE_TRADE = "take a trade"
    GIVE_BACK_TRADE = "give the trade back"
    REOPEN = "open the request to a retry"
    REQUEUE = "queue the request again (a queued place: its caller will not retry)"
    CANCEL_AT_BROKER = "cancel the GTT at the broker (before the move)"
    TELL = "tell the trader"


E = Effect
EFFECTS: dict[tuple[AttemptState, AttemptState], frozenset[Effect]] = {
    (S.QUEUED, S.SENDING): frozenset({E.TAKE_TRADE}),
    (S.QUEUED, S.REFUSED): frozenset({E.ANSWER, E.TELL}),
    (S.SENDING, S.RECORDED): frozenset({E.RECORD, E.ANSWER}),
    (S.SETTLING, S.RECORDED): frozenset({E.RECORD, E.ANSWER}),
    (S.SENDING, S.REFUSED): frozenset({E.GIVE_BACK_TRADE, E.ANSWER}),
    (S.SENDING, S.SETTLING): frozenset({E.ANSWER}),
    (S.SETTLING, S.LAPSED): frozenset({E.GIVE_BACK_TRADE, E.REOPEN, E.REQUEUE, E.TELL}),
    (S.LAPSED, S.FOUND_LATE): frozenset({E.TAKE_TRADE, E.RECORD, E.ANSWER, E.TELL}),
    (S.LAPSED, S.CANCELLED_LATE): frozenset({E.CANCEL_AT_BROKER, E.TELL}),
    (S.LAPSED, S.EXPIRED): frozenset(),
}
assert set(EFFECTS) == {(a, b) for a, tos in ARROWS.items() for b in tos}  # one table, every arrow


class IllegalMove(Exception):
    """A move the machine has no arrow for: a bug, never a caller's input."""


@dataclass(frozen=True)
class Move:
    """A transition: where the attempt goes, and what must be carried out with it."""

    to: AttemptState
    effects: frozenset[Effect]


def check_move(current: AttemptState, to: AttemptState) -> None:
    if to not in ARROWS.get(current, frozenset()):
        raise IllegalMove(f"a place attempt cannot move from {current} to {to}")


def move(current: AttemptState, to: AttemptState) -> Move:
    check_move(current, to)
    return Move(to, EFFECTS[(current, to)])


@dataclass(frozen=True)
class PlaceAttempt:
    """One stored attempt: what was (or is being) sent, and where it stands."""

    id: int
    record_id: int
    state: AttemptState
    plan: dict  # the intent: the broker requests, their roles, the prices and the order to record
    reserved_day: date | None  # the trading day whose trade it holds (None once given back)
    started_at: datetime
    updated_at: datetime
    holder: str  # the process that began it, or last moved it (host:pid:token)
    queued_at: datetime | None = None  # when its request was queued (a burst), else None

    @property
    def request_id(self) -> str | None:
        return self.plan["order"].get("request_id")


def settling(started_at: datetime, now: datetime, window: timedelta) -> bool:
    """THE settling rule: within `window` of an attempt's start, not finding its GTT at the
    broker proves nothing (the broker may still be doing the work); after it, absence is taken
    as "not placed" and the attempt lapses."""
    return now < started_at + window


def quiet(attempt: PlaceAttempt, now: datetime, stale_after: timedelta, holder_alive: bool | None) -> bool:
    """Whether a SENDING attempt's process has gone quiet: it died, or has not moved for
    `stale_after` (longer than any broker call may take). Only then may another settle it."""
    return holder_alive is False or attempt.updated_at <= now - stale_after


def after_failure(may_have_reached: bool) -> Move:
    """The move a broker failure makes of a SENDING attempt (its GTT not found after it)."""
    return move(S.SENDING, S.SETTLING if may_have_reached else S.REFUSED)


def after_lookup(current: AttemptState, found: bool, started_at: datetime, now: datetime,
                 window: timedelta) -> Move | None:
    """The move a look at the broker makes of an unsettled attempt (None: it stays as it is)."""
    if found:
        return move(current, S.RECORDED)
    if settling(started_at, now, window):
        return move(current, S.SETTLING) if current == S.SENDING else None
    return move(S.SETTLING, S.LAPSED)  # (a SENDING one moves to SETTLING first, in the same unit of work)


class LateVerdict(str, enum.Enum):
    WAIT = "wait"  # another place could own it, or the request is being placed again: next pass
    COUNT = "count"  # the request's one GTT: recorded and counted
    CANCEL = "cancel"  # a duplicate, half a pair, or past the limit: cancelled at the broker


def late_verdict(*, complete: bool, others_may_own: bool, request_open: bool, request_answered: int | None
                 ) -> tuple[LateVerdict, str]:
    """What to do with a GTT found for a LAPSED attempt. `complete`: every leg of the intent
    is there; `request_open`: a newer attempt of the request is unsettled; `request_answered`:
    the HTTP status the request was last answered with (None when it was not)."""
    if others_may_own:
        return LateVerdict.WAIT, "another open place could own it"
    if not complete:
        return LateVerdict.CANCEL, "half of an OCO pair found late: withdrawn"
    if request_open:
        return LateVerdict.WAIT, "the request is being placed again"
    if request_answered == 200:
        return LateVerdict.CANCEL, "the request had been placed afresh: the late GTT is a duplicate and was cancelled"
    if request_answered is not None:
        return LateVerdict.CANCEL, (f"the request was refused (HTTP {request_answered}) when sent again after its "
                                    "place lapsed: the late GTT was cancelled")
    return LateVerdict.COUNT, "the request's own GTT"
