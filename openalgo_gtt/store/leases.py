"""A named lease in the database: however many processes or hosts run the service, exactly one
holds it at a time. The holder renews it; when a holder dies, the lease lapses after `ttl` and
another process takes over."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from sqlalchemy import Engine, or_, update

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.store.engine import dialect_insert
from openalgo_gtt.store.models import Lease


class DatabaseLease:
    def __init__(self, engine: Engine, name: str, holder: str, ttl: timedelta, now: Callable = utcnow):
        self._engine = engine
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self._now = now
        self._insert = dialect_insert(engine)

    def acquire(self) -> bool:
        """Take or renew the lease; True while this holder has it."""
        now = self._now()
        expires = now + self.ttl
        with self._engine.begin() as conn:
            conn.execute(self._insert(Lease).values(name=self.name, holder=self.holder, expires_at=expires)
                         .on_conflict_do_nothing(index_elements=["name"]))
            taken = conn.execute(
                update(Lease)
                .where(Lease.name == self.name, or_(Lease.holder == self.holder, Lease.expires_at < now))
                .values(holder=self.holder, expires_at=expires)
            ).rowcount
        return bool(taken)

    def release(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
                         .values(expires_at=self._now() - timedelta(seconds=1)))
