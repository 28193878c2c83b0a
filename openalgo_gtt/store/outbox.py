"""The notifications outbox: events, and one delivery row per event and notification URL.

An event is added in the caller's transaction (the one recording the change that caused it), so
it exists exactly when the change does. The sender then works through each URL's due
deliveries on its own; a URL is known here only by its `url_id`, never in clear.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.model import DeliveryState
from openalgo_gtt.domain.notifications import Event
from openalgo_gtt.store.models import NotifyDelivery, NotifyEvent


@dataclass(frozen=True)
class Due:
    """A delivery to attempt now."""

    delivery_id: int
    attempts: int
    event: Event
    event_at: datetime  # when the event was recorded: the retry window counts from here


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    failed: int
    last_error: str | None
    last_error_at: datetime | None


class Outbox:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._insert_event = insert(NotifyEvent.__table__).returning(NotifyEvent.id)
        self._insert_delivery = insert(NotifyDelivery.__table__)

    def add(self, conn: Connection, event: Event, url_ids: list[str] | tuple[str, ...]) -> int:
        """Record `event`, due at once to each URL of `url_ids`, in the caller's transaction."""
        at = as_utc(event.at)  # stored in UTC (SQLite keeps no offset)
        event_id = conn.execute(self._insert_event, {
            "kind": str(event.kind), "trigger_id": event.trigger_id, "payload": event.to_json(),
            "created_at": at}).scalar_one()
        if url_ids:
            conn.execute(self._insert_delivery, [
                {"event_id": event_id, "url_id": url_id, "state": DeliveryState.PENDING, "attempts": 0,
                 "next_attempt_at": at, "created_at": at} for url_id in url_ids])
        return event_id

    def due(self, url_id: str, now: datetime, limit: int = 20) -> list[Due]:
        """One URL's pending deliveries whose time has come, oldest first."""
        query = (select(NotifyDelivery.id, NotifyDelivery.attempts, NotifyEvent.payload, NotifyEvent.created_at)
                 .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)
                 .where(NotifyDelivery.url_id == url_id, NotifyDelivery.state == DeliveryState.PENDING,
                        NotifyDelivery.next_attempt_at <= now)
                 .order_by(NotifyDelivery.next_attempt_at, NotifyDelivery.id).limit(limit))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Due(row.id, row.attempts, Event.from_json(row.payload), as_utc(row.created_at)) for row in rows]

    def delivered(self, delivery_id: int, now: datetime) -> None:
        self._finish(delivery_id, {"state": DeliveryState.DELIVERED, "finished_at": now,
                                   "attempts": NotifyDelivery.attempts + 1})

    def retry_at(self, delivery_id: int, when: datetime, error: str) -> None:
        self._finish(delivery_id, {"next_attempt_at": when, "last_error": error,
                                   "attempts": NotifyDelivery.attempts + 1})

    def given_up(self, delivery_id: int, now: datetime, error: str) -> None:
        self._finish(delivery_id, {"state": DeliveryState.FAILED, "finished_at": now, "last_error": error,
                                   "attempts": NotifyDelivery.attempts + 1})

    def _finish(self, delivery_id: int, values: dict) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(NotifyDelivery).where(NotifyDelivery.id == delivery_id,
                                                      NotifyDelivery.state == DeliveryState.PENDING).values(**values))

    def drop_other_urls(self, url_ids: list[str] | tuple[str, ...], now: datetime) -> int:
        """Pending deliveries to URLs no longer configured will never be sent: say so."""
        with self._engine.begin() as conn:
            return conn.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.state == DeliveryState.PENDING, NotifyDelivery.url_id.not_in(list(url_ids)))
                .values(state=DeliveryState.DROPPED, finished_at=now,
                        last_error="the URL is no longer in NOTIFY_URLS")).rowcount

    def stats(self) -> OutboxStats:
        with self._engine.connect() as conn:
            counts = dict(conn.execute(
                select(NotifyDelivery.state, func.count())
                .where(NotifyDelivery.state.in_([DeliveryState.PENDING, DeliveryState.FAILED]))
                .group_by(NotifyDelivery.state)).all())
            last = conn.execute(
                select(NotifyDelivery.last_error, func.coalesce(NotifyDelivery.finished_at,
                                                                NotifyDelivery.next_attempt_at))
                .where(NotifyDelivery.last_error.is_not(None),
                       NotifyDelivery.state.in_([DeliveryState.PENDING, DeliveryState.FAILED]))
                .order_by(NotifyDelivery.id.desc()).limit(1)).first()
        return OutboxStats(counts.get(DeliveryState.PENDING, 0), counts.get(DeliveryState.FAILED, 0),
                           last[0] if last else None, as_utc(last[1]) if last else None)

    def purge_before(self, cutoff: datetime, batch: int = 1000) -> int:
        """Delete up to `batch` events recorded before `cutoff` with no delivery still pending,
        and their deliveries; returns how many events went."""
        pending = select(NotifyDelivery.event_id).where(NotifyDelivery.state == DeliveryState.PENDING)
        with self._engine.begin() as conn:
            ids = list(conn.scalars(select(NotifyEvent.id).where(NotifyEvent.created_at < cutoff,
                                                                 NotifyEvent.id.not_in(pending))
                                    .order_by(NotifyEvent.id).limit(batch)))
            if ids:
                conn.execute(delete(NotifyDelivery).where(NotifyDelivery.event_id.in_(ids)))
                conn.execute(delete(NotifyEvent).where(NotifyEvent.id.in_(ids)))
        return len(ids)

    def has_event(self, kind: str, since: datetime) -> bool:
        """Whether an event of `kind` was recorded at or after `since`."""
        with self._engine.connect() as conn:
            return conn.execute(select(NotifyEvent.id).where(NotifyEvent.kind == str(kind),
                                                             NotifyEvent.created_at >= since).limit(1)).first() is not None

    def events_for(self, trigger_id: str | None) -> list[tuple[Event, list[str]]]:
        """A trigger's events (None: those of no trigger), oldest first, each with its deliveries' states."""
        with self._engine.connect() as conn:
            events = conn.execute(select(NotifyEvent.id, NotifyEvent.payload)
                                  .where(NotifyEvent.trigger_id.is_(None) if trigger_id is None
                                         else NotifyEvent.trigger_id == trigger_id).order_by(NotifyEvent.id)).all()
            states: dict[int, list[str]] = {}
            if events:
                for event_id, state in conn.execute(
                        select(NotifyDelivery.event_id, NotifyDelivery.state)
                        .where(NotifyDelivery.event_id.in_([e.id for e in events])).order_by(NotifyDelivery.id)):
                    states.setdefault(event_id, []).append(state)
        return [(Event.from_json(e.payload), states.get(e.id, [])) for e in events]
