"""The trader hears about the Upstox token: the day's reminder that it expires at 03:30 IST
tonight, and Upstox rejecting it.

The reminder is checked on the watcher's lease holder's loop (so one process sends it): on a
weekday (trading days are approximated as Monday to Friday: exchange holidays are not known
here), from 08:30 IST, once per IST day, when the token in use is a stored login that expires at
03:30 IST the next day and has not been renewed since (a newer login would expire later). A
token from keys.json or ACCESS_TOKEN has no known expiry and gets no reminder. "Once" holds across
processes and restarts: the check looks for today's reminder in the outbox before writing one.
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Callable

from openalgo_gtt.domain.clock import IST, as_utc, ist_text, utcnow
from openalgo_gtt.domain.model import EventKind
from openalgo_gtt.domain.notifications import Event
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.tokens import EXPIRY_TIME_IST, LOGIN_HINT, TokenProvider
from openalgo_gtt.store.unit_of_work import Store

log = logging.getLogger(__name__)

REMIND_AT_IST = time(8, 30)


def reminder_due(now: datetime, expires_at: datetime | None) -> bool:
    """Whether, at `now`, the token expiring at `expires_at` deserves today's reminder."""
    local = as_utc(now).astimezone(IST)
    if expires_at is None or local.weekday() >= 5 or local.time() < REMIND_AT_IST:
        return False
    tonight = datetime.combine(local.date() + timedelta(days=1), EXPIRY_TIME_IST, tzinfo=IST)
    return as_utc(expires_at) == as_utc(tonight)


class TokenAlerts:
    def __init__(self, tokens: TokenProvider, store: Store, notifications: Notifications,
                 clock: Callable[[], datetime] = utcnow):
        self._tokens = tokens
        self._store = store
        self._notifications = notifications
        self._clock = clock
        self._reminded_on = None  # the IST day this process last found the reminder done

    def check_expiry(self) -> bool:
        """The lease holder's housekeeping: write today's reminder if due; True when written."""
        now = self._clock()
        local = as_utc(now).astimezone(IST)
        today = local.date()
        if self._reminded_on == today or local.weekday() >= 5 or local.time() < REMIND_AT_IST:
            return False  # before the token store is read: this runs on every watcher pass
        expires_at = self._tokens.known_expiry()
        if not reminder_due(now, expires_at):
            return False
        start_of_day = as_utc(datetime.combine(today, time(0, 0), tzinfo=IST))
        if self._store.outbox.has_event(EventKind.TOKEN_EXPIRING, since=start_of_day):
            self._reminded_on = today
            return False
        with self._store.unit_of_work() as uow:
            self._notifications.emit(uow, Event(
                kind=EventKind.TOKEN_EXPIRING, at=now,
                message=f"The Upstox access token expires at {ist_text(expires_at)} IST: {LOGIN_HINT}",
                extra={"expires_at": ist_text(expires_at)}))
        self._reminded_on = today
        return True

    def _rejected_message(self) -> str:
        policy = getattr(self._tokens, "policy", None)
        if policy is None or policy.label == "Upstox":
            return f"Upstox rejected the access token (UDAPI100050): {LOGIN_HINT}"
        return f"{policy.label} rejected the access token: {policy.login_hint}"

    def rejected(self) -> None:
        """TokenProvider.on_rejected: Upstox answered 401 to the token in use (once per token)."""
        try:
            with self._store.unit_of_work() as uow:
                self._notifications.emit(uow, Event(
                    kind=EventKind.TOKEN_REJECTED, at=self._clock(),
                    message=self._rejected_message()))
        except Exception:  # noqa: BLE001 - telling the trader must never fail the call that noticed
            log.exception("could not record the token-rejected notification")
