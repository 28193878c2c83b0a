"""A broker rule's status, and what it means for the gateway: the one classification every part
uses.

A broker reports each rule of a GTT in one of `RuleStatus`'s states. What the gateway does with a
trigger (show it as live, cancel an OCO's other leg, refuse a cancel, tell the trader) depends only
on the rule's *phase*:

- waiting: the rule has not fired and still can (SCHEDULED; PENDING; INACTIVE: a bracket's exit
  waiting for its entry, or a GTT Kite disabled until the trader acts);
- fired: the trigger was hit and the broker placed the child order (TRIGGERED; OPEN while that
  order rests; COMPLETED once it filled). A fire is never undone: the position exists;
- failed, expired, cancelled: over without firing.

The statuses and their phases live together so that one cannot change without the other. The
classifications this replaced disagreed (INACTIVE was waiting for the watcher but ended an OCO
pair; OPEN could still fire for the order book but had fired for the OCO watcher), so one broker
answer read as live in one place and as over in another.
"""
from __future__ import annotations

from enum import StrEnum


class RuleStatus(StrEnum):
    """A rule's status as the broker reports it."""

    SCHEDULED = "SCHEDULED"
    TRIGGERED = "TRIGGERED"
    EXPIRED = "EXPIRED"
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    PENDING = "PENDING"
    FAILED = "FAILED"
    INACTIVE = "INACTIVE"


# Not a broker status: an OCO leg the broker no longer lists. Upstox's list omits completed GTTs,
# so absence reads as fired (a GTT deleted in the app looks the same; the pair's message says so).
GONE = "GONE"


class Phase(StrEnum):
    WAITING = "waiting"
    FIRED = "fired"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    # A status this gateway does not know: not waiting (nothing counts on it firing), not fired.
    UNKNOWN = "unknown"


_PHASES = {
    RuleStatus.SCHEDULED: Phase.WAITING, RuleStatus.PENDING: Phase.WAITING, RuleStatus.INACTIVE: Phase.WAITING,
    RuleStatus.TRIGGERED: Phase.FIRED, RuleStatus.OPEN: Phase.FIRED, RuleStatus.COMPLETED: Phase.FIRED,
    GONE: Phase.FIRED,
    RuleStatus.FAILED: Phase.FAILED,
    RuleStatus.EXPIRED: Phase.EXPIRED,
    RuleStatus.CANCELLED: Phase.CANCELLED,
}


def phase(status: str | None) -> Phase:
    """The phase of a rule status (or of GONE); UNKNOWN for anything else, None included."""
    return _PHASES.get(status, Phase.UNKNOWN) if status is not None else Phase.UNKNOWN
