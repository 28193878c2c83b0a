"""The sandbox broker's tables as a repository: `SandboxRepository` is the `SandboxStorage` the
broker declares (`brokers/sandbox/storage.py`), reading its state back as the sandbox's own
dataclasses and writing only what changed.

Every write transaction starts with `claim()`, which increments `sandbox_meta.generation`. That
row lock makes writers from several processes take turns; the rows each writer changes carry
the new generation as `revision`, which is how the others find what to reload. A fire is also a
conditional UPDATE on the rule's previous status, so even a writer that skipped the protocol
could not make a rule fire twice: the second writer's update matches no row and it backs off.
"""
from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator, Mapping, Sequence

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openalgo_gtt.brokers.base import FiredEvent
from openalgo_gtt.brokers.sandbox.model import Changes, Gtt, Rule
from openalgo_gtt.brokers.sandbox.quotes import QuoteState
from openalgo_gtt.brokers.sandbox.storage import Conflict, Fill, InstrumentNames, Meta
from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.symbols import plain_decimal
from openalgo_gtt.domain.paper import PaperOrder, PaperTrade, Position
from openalgo_gtt.store import sandbox_paper
from openalgo_gtt.store.models import Instrument
from openalgo_gtt.store.sandbox_models import (
    SandboxFill, SandboxGtt, SandboxGttRule, SandboxMeta, SandboxQuote,
)

__all__ = ["SandboxRepository"]

META_ID = 1
_META = SandboxMeta.__table__
_GTTS = SandboxGtt.__table__
_RULES = SandboxGttRule.__table__
_QUOTES = SandboxQuote.__table__
_FILLS = SandboxFill.__table__

# Prebuilt statements, run with a list of parameter sets (executemany). WHERE parameters are
# prefixed `b_` because SQLAlchemy reserves the column names for the SET clause.
_SET_RULE_STATUS = (
    update(_RULES)
    .where(_RULES.c.gtt_id == bindparam("b_gtt_id"), _RULES.c.strategy == bindparam("b_strategy"),
           _RULES.c.status == bindparam("b_status"))  # only from the status this process saw
    .values(status=bindparam("status"), trigger_price=bindparam("trigger_price"), order_id=bindparam("order_id"),
            message=bindparam("message"), updated_at=bindparam("updated_at"))
)
_MOVE_RULE = (
    update(_RULES)
    .where(_RULES.c.gtt_id == bindparam("b_gtt_id"), _RULES.c.strategy == bindparam("b_strategy"))
    .values(trigger_price=bindparam("trigger_price"), updated_at=bindparam("updated_at"))
)
_TOUCH_GTT = (
    update(_GTTS).where(_GTTS.c.gtt_id == bindparam("b_gtt_id"))
    .values(updated_at=bindparam("updated_at"), revision=bindparam("revision"))
)
_REPLACE_GTT = (
    update(_GTTS).where(_GTTS.c.gtt_id == bindparam("b_gtt_id"))
    .values(type=bindparam("type"), quantity=bindparam("quantity"), updated_at=bindparam("updated_at"),
            revision=bindparam("revision"))
)
# The statements every write transaction runs, built once rather than per call.
_CLAIM = update(_META).where(_META.c.id == META_ID).values(generation=_META.c.generation + 1)
_COUNTERS = select(_META.c.generation, _META.c.gtt_seq, _META.c.order_seq).where(_META.c.id == META_ID)
_GENERATION = select(_META.c.generation).where(_META.c.id == META_ID)
_SAVE_COUNTERS = (update(_META).where(_META.c.id == META_ID)
                  .values(gtt_seq=bindparam("gtt_seq"), order_seq=bindparam("order_seq")))
_MASTER = Instrument.__table__  # its Core table: no ORM entity to resolve on every query
_NAMES = (_MASTER.c.symbol, _MASTER.c.exchange, _MASTER.c.trading_symbol)
_INSTRUMENT = select(*_NAMES).where(_MASTER.c.instrument_key == bindparam("key"))
_INSTRUMENTS = select(_MASTER.c.instrument_key, *_NAMES).where(
    _MASTER.c.instrument_key.in_(bindparam("keys", expanding=True)))
_INSERT_GTTS = insert(_GTTS)
_INSERT_RULES = insert(_RULES)
_INSERT_FILLS = insert(_FILLS)
_INSERT_QUOTES = insert(_QUOTES)
_MOVE_QUOTE = (
    update(_QUOTES).where(_QUOTES.c.instrument_key == bindparam("b_instrument_key"))
    .values(last_price=bindparam("last_price"), updated_at=bindparam("updated_at"), revision=bindparam("revision"))
)
_UPDATE_QUOTE = (
    update(_QUOTES).where(_QUOTES.c.instrument_key == bindparam("b_instrument_key"))
    .values(last_price=bindparam("last_price"), open=bindparam("open"), open_day=bindparam("open_day"),
            updated_at=bindparam("updated_at"), revision=bindparam("revision"))
)



def _price(value) -> Decimal | None:
    """A stored price without the column's trailing zeros (100.050000 -> 100.05)."""
    if value is None:
        return None
    return plain_decimal(value if isinstance(value, Decimal) else Decimal(str(value)))


class SandboxRepository:
    """The sandbox's state in the database: one `SandboxTransaction` per read or write."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def ensure_meta(self) -> None:
        """Create the meta row once; a second process racing to create it is harmless."""
        with self._sessions() as session:
            if session.execute(select(_META.c.id).where(_META.c.id == META_ID)).first() is not None:
                return
        try:
            with self._sessions.begin() as session:
                session.execute(insert(_META).values(id=META_ID, generation=0, gtt_seq=0, order_seq=0))
        except IntegrityError:
            pass

    @contextmanager
    def reading(self) -> Iterator[SandboxTransaction]:
        with self._sessions() as session:
            yield SandboxTransaction(session)

    @contextmanager
    def writing(self) -> Iterator[SandboxTransaction]:
        with self._sessions.begin() as session:
            yield SandboxTransaction(session)

    def fills(self, gtt_id: str | None = None) -> list[Fill]:
        query = select(_FILLS).order_by(_FILLS.c.id)
        if gtt_id is not None:
            query = query.where(_FILLS.c.gtt_id == gtt_id)
        with self._sessions() as session:
            return [
                Fill(order_id=row["order_id"], gtt_id=row["gtt_id"], strategy=row["strategy"],
                     instrument_key=row["instrument_key"], transaction_type=row["transaction_type"],
                     quantity=row["quantity"], price=_price(row["price"]), ltp=_price(row["ltp"]),
                     filled_at=as_utc(row["filled_at"]))
                for row in session.execute(query).mappings()
            ]

    # ----- the paper account (store/sandbox_paper.py) --------------------------------------------

    def paper_orders(self) -> list[PaperOrder]:
        with self._sessions() as session:
            return sandbox_paper.all_orders(session.connection())

    def paper_trades(self) -> list[PaperTrade]:
        with self._sessions() as session:
            return sandbox_paper.all_trades(session.connection())

    def paper_positions(self) -> list[Position]:
        with self._sessions() as session:
            return sandbox_paper.all_positions(session.connection())

    def paper_keys(self) -> set[str]:
        with self._sessions() as session:
            return sandbox_paper.open_keys(session.connection())


class SandboxTransaction:
    """Reads and writes inside one session's transaction (the broker's `StateWriter`)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # ----- the meta row ------------------------------------------------------------------------

    def claim(self) -> Meta:
        conn = self._session.connection()  # Core statements: the ORM's execute path adds nothing here
        conn.execute(_CLAIM)
        row = conn.execute(_COUNTERS).one()
        return Meta(int(row.generation), int(row.gtt_seq), int(row.order_seq))

    def generation(self) -> int:
        return int(self._session.connection().execute(_GENERATION).scalar_one())

    def save_counters(self, meta: Meta) -> None:
        self._session.connection().execute(_SAVE_COUNTERS, {"gtt_seq": meta.gtt_seq, "order_seq": meta.order_seq})

    # ----- reading -----------------------------------------------------------------------------

    def load_gtts(self, since: int | None = None) -> list[Gtt]:
        gtt_query = select(_GTTS)
        rule_query = select(_RULES).order_by(_RULES.c.gtt_id, _RULES.c.position)
        if since is not None:
            gtt_query = gtt_query.where(_GTTS.c.revision > since)
            rule_query = rule_query.join(_GTTS, _GTTS.c.gtt_id == _RULES.c.gtt_id).where(_GTTS.c.revision > since)
        rules: dict[str, list[Rule]] = {}
        for row in self._session.execute(rule_query).mappings():
            rules.setdefault(row["gtt_id"], []).append(Rule(
                strategy=row["strategy"], trigger_type=row["trigger_type"], trigger_price=_price(row["trigger_price"]),
                transaction_type=row["transaction_type"], status=row["status"],
                trailing_gap=_price(row["trailing_gap"]), market_protection=row["market_protection"],
                order_id=row["order_id"], message=row["message"], updated_at=as_utc(row["updated_at"]),
            ))
        return [
            Gtt(gtt_id=row["gtt_id"], type=row["type"], instrument_key=row["instrument_key"],
                transaction_type=row["transaction_type"], product=row["product"], quantity=row["quantity"],
                rules=rules.get(row["gtt_id"], []), created_at=as_utc(row["created_at"]),
                expires_at=as_utc(row["expires_at"]), trading_symbol=row["trading_symbol"] or "",
                updated_at=as_utc(row["updated_at"]))
            for row in self._session.execute(gtt_query.order_by(_GTTS.c.created_at, _GTTS.c.gtt_id)).mappings()
        ]

    def load_quotes(self, since: int | None = None) -> list[tuple[str, QuoteState]]:
        query = select(_QUOTES)
        if since is not None:
            query = query.where(_QUOTES.c.revision > since)
        return [
            (row["instrument_key"], QuoteState(_price(row["last_price"]), _price(row["open"]), row["open_day"],
                                               as_utc(row["updated_at"])))
            for row in self._session.execute(query).mappings()
        ]

    def instrument(self, instrument_key: str) -> InstrumentNames | None:
        row = self._session.connection().execute(_INSTRUMENT, {"key": instrument_key}).first()
        return None if row is None else InstrumentNames(row.symbol, row.exchange, row.trading_symbol or "")

    def instruments(self, instrument_keys: Sequence[str]) -> dict[str, InstrumentNames]:
        if not instrument_keys:
            return {}
        rows = self._session.connection().execute(_INSTRUMENTS, {"keys": list(instrument_keys)})
        return {row.instrument_key: InstrumentNames(row.symbol, row.exchange, row.trading_symbol or "")
                for row in rows}

    # ----- writing -----------------------------------------------------------------------------

    def save_changes(self, changes: Changes, gtts: Mapping[str, Gtt], revision: int) -> None:
        conn = self._session.connection()
        placed = [gtts[gtt_id] for gtt_id in sorted(changes.placed) if gtt_id in gtts]
        if placed:
            conn.execute(_INSERT_GTTS, [_gtt_row(gtt, revision) for gtt in placed])
            conn.execute(_INSERT_RULES, _rule_rows(placed))

        replaced = [gtts[gtt_id] for gtt_id in sorted(changes.replaced - changes.placed) if gtt_id in gtts]
        if replaced:
            conn.execute(_REPLACE_GTT, [
                {"b_gtt_id": gtt.gtt_id, "type": gtt.type, "quantity": gtt.quantity, "updated_at": gtt.updated_at,
                 "revision": revision} for gtt in replaced
            ])
            conn.execute(delete(_RULES).where(_RULES.c.gtt_id.in_([gtt.gtt_id for gtt in replaced])))
            conn.execute(_INSERT_RULES, _rule_rows(replaced))

        moved: list[dict] = []
        switched: list[dict] = []
        touched: list[dict] = []
        for gtt_id, before in sorted(changes.touched.items()):
            gtt = gtts.get(gtt_id)
            if gtt is None or gtt_id in changes.placed or gtt_id in changes.replaced:
                continue
            for strategy, old_status in before.items():
                rule = gtt.rule(strategy)
                if rule is None:
                    continue
                if rule.status == old_status:  # only the price moved (a trailing stop)
                    moved.append({"b_gtt_id": gtt_id, "b_strategy": strategy, "trigger_price": rule.trigger_price,
                                  "updated_at": rule.updated_at})
                else:
                    switched.append({"b_gtt_id": gtt_id, "b_strategy": strategy, "b_status": old_status,
                                     "status": rule.status, "trigger_price": rule.trigger_price,
                                     "order_id": rule.order_id, "message": rule.message,
                                     "updated_at": rule.updated_at})
            touched.append({"b_gtt_id": gtt_id, "updated_at": gtt.updated_at, "revision": revision})
        if switched:
            # The fire itself: each row changes only if its status is still the one this process
            # changed it from, so of two writers racing on one rule exactly one matches.
            matched = conn.execute(_SET_RULE_STATUS, switched).rowcount
            if matched != len(switched):
                raise Conflict(f"{len(switched) - matched} of {len(switched)} rule status changes found the rule "
                               "already changed in the database")
        if moved:
            conn.execute(_MOVE_RULE, moved)
        if touched:
            conn.execute(_TOUCH_GTT, touched)

        if changes.fires:
            conn.execute(_INSERT_FILLS, [_fill_row(event) for event in changes.fires])

    def open_orders(self) -> list[PaperOrder]:
        return sandbox_paper.open_orders(self._session.connection())

    def paper_order(self, order_id: str) -> PaperOrder | None:
        return sandbox_paper.order_of(self._session.connection(), order_id)

    def save_paper(self, new: Sequence[PaperOrder], changed: Sequence[PaperOrder],
                   trades: Sequence[PaperTrade]) -> None:
        sandbox_paper.save_paper(self._session.connection(), new, changed, trades)

    def positions(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Position]:
        return sandbox_paper.positions_of(self._session.connection(), pairs)

    def save_positions(self, positions: Sequence[Position], stored: set[tuple[str, str]]) -> None:
        sandbox_paper.save_positions(self._session.connection(), positions, stored)

    def save_quotes(self, quotes: Sequence[tuple[str, QuoteState]], stored: set[str], revision: int, *,
                    prices_only: set[str] = frozenset()) -> None:
        new, known, moved = [], [], []
        for key, quote in quotes:
            if key in prices_only and key in stored:  # most of them, on every live read: fewer columns
                moved.append({"b_instrument_key": key, "last_price": quote.last_price, "updated_at": quote.at,
                              "revision": revision})
                continue
            row = {"last_price": quote.last_price, "open": quote.open, "open_day": quote.day,
                   "updated_at": quote.at, "revision": revision}
            if key in stored:
                known.append({"b_instrument_key": key, **row})
            else:
                new.append({"instrument_key": key, **row})
        conn = self._session.connection()
        if new:
            conn.execute(_INSERT_QUOTES, new)
        if known:
            conn.execute(_UPDATE_QUOTE, known)
        if moved:
            conn.execute(_MOVE_QUOTE, moved)
        stored.update(row["instrument_key"] for row in new)


# --- rows ----------------------------------------------------------------------------------------


def _gtt_row(gtt: Gtt, revision: int) -> dict:
    return {
        "gtt_id": gtt.gtt_id, "type": gtt.type, "instrument_key": gtt.instrument_key,
        "trading_symbol": gtt.trading_symbol, "transaction_type": gtt.transaction_type,
        "product": gtt.product, "quantity": gtt.quantity, "created_at": gtt.created_at,
        "updated_at": gtt.updated_at, "expires_at": gtt.expires_at, "revision": revision,
    }


def _rule_rows(gtts: list[Gtt]) -> list[dict]:
    return [
        {
            "gtt_id": gtt.gtt_id, "strategy": rule.strategy, "position": position,
            "trigger_type": rule.trigger_type, "trigger_price": rule.trigger_price,
            "trailing_gap": rule.trailing_gap, "market_protection": rule.market_protection,
            "transaction_type": rule.transaction_type, "status": rule.status, "message": rule.message,
            "order_id": rule.order_id, "updated_at": rule.updated_at,
        }
        for gtt in gtts for position, rule in enumerate(gtt.rules)
    ]


def _fill_row(event: FiredEvent) -> dict:
    return {
        "order_id": event.order_id, "gtt_id": event.gtt_id, "strategy": event.strategy,
        "instrument_key": event.instrument_key, "transaction_type": event.transaction_type,
        "quantity": event.quantity, "price": event.price, "ltp": event.ltp, "filled_at": event.at,
    }
