"""What /api/health reports: the store reachable, today's trades against the limit, and the
Upstox token's state. Raises StoreUnreachable when the database cannot be read."""
from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from openalgo_gtt.services.tokens import TokenProvider
from openalgo_gtt.services.trade_limit import DailyTradeLimit


class StoreUnreachable(Exception):
    pass


class HealthCheck:
    def __init__(self, broker_name: str, limit: DailyTradeLimit, tokens: TokenProvider):
        self._broker_name = broker_name
        self._limit = limit
        self._tokens = tokens

    def report(self) -> dict:
        body = {"status": "ok", "service": "openalgo-gtt", "broker": self._broker_name, "today_trade_count": 0,
                "daily_trade_limit": self._limit.limit, "database": "ok"}
        try:
            body["today_trade_count"] = self._limit.today_count()
            if self._broker_name == "upstox":
                body.update(self._tokens.describe())
        except SQLAlchemyError as exc:
            raise StoreUnreachable(f"database unreachable: {type(exc.orig or exc).__name__}") from exc
        return body
