"""The sandbox's paper account in the database: orders, trades and positions (domain/paper.py).

Written only inside the sandbox broker's write transaction (store/sandbox.py `SandboxTransaction`
delegates here), which holds the sandbox's writer turn: a position's read-modify-write cannot
interleave with another writer's. Read for the OpenAlgo books and for funds on their own.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Sequence

from sqlalchemy import Connection, bindparam, insert, select, tuple_, update

from openalgo_gtt.brokers.sandbox.storage import Conflict
from openalgo_gtt.domain.clock import as_utc
from openalgo_gtt.domain.paper import ORDER_OPEN, PaperOrder, PaperTrade, Position
from openalgo_gtt.domain.symbols import plain_decimal
from openalgo_gtt.store.sandbox_models import SandboxOrder, SandboxPosition, SandboxTrade

_ORDERS = SandboxOrder.__table__
_TRADES = SandboxTrade.__table__
_POSITIONS = SandboxPosition.__table__

_FILL_ORDER = (
    update(_ORDERS).where(_ORDERS.c.order_id == bindparam("b_order_id"), _ORDERS.c.status == ORDER_OPEN)
    .values(status=bindparam("status"), average_price=bindparam("average_price"),
            updated_at=bindparam("updated_at"))
)
_UPDATE_POSITION = (
    update(_POSITIONS)
    .where(_POSITIONS.c.instrument_key == bindparam("b_instrument_key"), _POSITIONS.c.product == bindparam("b_product"))
    .values(quantity=bindparam("quantity"), cost=bindparam("cost"), realised=bindparam("realised"),
            updated_at=bindparam("updated_at"))
)

# Run by every write that fills, fires or cancels (the live prices' every read): built once.
_OPEN_ORDERS = (select(_ORDERS).where(_ORDERS.c.status == ORDER_OPEN)
                .order_by(_ORDERS.c.created_at, _ORDERS.c.order_id))
_OPEN_KEYS = (select(_ORDERS.c.instrument_key).where(_ORDERS.c.status == ORDER_OPEN)
              .union(select(_POSITIONS.c.instrument_key).where(_POSITIONS.c.quantity != 0)))
_POSITIONS_OF = select(_POSITIONS).where(
    tuple_(_POSITIONS.c.instrument_key, _POSITIONS.c.product).in_(bindparam("pairs", expanding=True)))
_INSERT_ORDERS = insert(_ORDERS)
_INSERT_TRADES = insert(_TRADES)
_INSERT_POSITIONS = insert(_POSITIONS)


def _exact(value) -> Decimal | None:
    if value is None:
        return None
    return plain_decimal(value if isinstance(value, Decimal) else Decimal(str(value)))


def _order(row) -> PaperOrder:
    return PaperOrder(
        order_id=row["order_id"], gtt_id=row["gtt_id"], strategy=row["strategy"],
        instrument_key=row["instrument_key"], symbol=row["symbol"], exchange=row["exchange"],
        product=row["product"], side=row["side"], quantity=row["quantity"], pricetype=row["pricetype"],
        price=_exact(row["price"]), trigger_price=_exact(row["trigger_price"]), status=row["status"],
        created_at=as_utc(row["created_at"]), updated_at=as_utc(row["updated_at"]),
        average_price=_exact(row["average_price"]))


def _trade(row) -> PaperTrade:
    return PaperTrade(order_id=row["order_id"], instrument_key=row["instrument_key"], symbol=row["symbol"],
                      exchange=row["exchange"], product=row["product"], side=row["side"],
                      quantity=row["quantity"], price=_exact(row["price"]), at=as_utc(row["traded_at"]))


def _position(row) -> Position:
    return Position(instrument_key=row["instrument_key"], product=row["product"], symbol=row["symbol"],
                    exchange=row["exchange"], quantity=row["quantity"], cost=_exact(row["cost"]),
                    realised=_exact(row["realised"]), updated_at=as_utc(row["updated_at"]))


def _order_row(order: PaperOrder) -> dict:
    return {
        "order_id": order.order_id, "gtt_id": order.gtt_id, "strategy": order.strategy,
        "instrument_key": order.instrument_key, "symbol": order.symbol, "exchange": order.exchange,
        "product": order.product, "side": order.side, "quantity": order.quantity, "pricetype": order.pricetype,
        "price": order.price, "trigger_price": order.trigger_price, "status": order.status,
        "average_price": order.average_price, "created_at": order.created_at, "updated_at": order.updated_at,
    }


# --- reading ------------------------------------------------------------------------------------


def open_orders(conn: Connection) -> list[PaperOrder]:
    return [_order(row) for row in conn.execute(_OPEN_ORDERS).mappings()]


def order_of(conn: Connection, order_id: str) -> PaperOrder | None:
    row = conn.execute(select(_ORDERS).where(_ORDERS.c.order_id == order_id)).mappings().first()
    return None if row is None else _order(row)


def all_orders(conn: Connection) -> list[PaperOrder]:
    query = select(_ORDERS).order_by(_ORDERS.c.created_at, _ORDERS.c.order_id)
    return [_order(row) for row in conn.execute(query).mappings()]


def all_trades(conn: Connection) -> list[PaperTrade]:
    query = select(_TRADES).order_by(_TRADES.c.traded_at, _TRADES.c.order_id)
    return [_trade(row) for row in conn.execute(query).mappings()]


def all_positions(conn: Connection) -> list[Position]:
    query = select(_POSITIONS).order_by(_POSITIONS.c.instrument_key, _POSITIONS.c.product)
    return [_position(row) for row in conn.execute(query).mappings()]


def open_keys(conn: Connection) -> set[str]:
    """The instruments of open orders and of positions not flat."""
    return set(conn.execute(_OPEN_KEYS).scalars())


def positions_of(conn: Connection, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Position]:
    if not pairs:
        return {}
    rows = conn.execute(_POSITIONS_OF, {"pairs": list(pairs)}).mappings()
    return {(row["instrument_key"], row["product"]): _position(row) for row in rows}


# --- writing ------------------------------------------------------------------------------------


def save_paper(conn: Connection, new: Sequence[PaperOrder], changed: Sequence[PaperOrder],
               trades: Sequence[PaperTrade]) -> None:
    if new:
        conn.execute(_INSERT_ORDERS, [_order_row(order) for order in new])
    if changed:
        matched = conn.execute(_FILL_ORDER, [
            {"b_order_id": order.order_id, "status": order.status, "average_price": order.average_price,
             "updated_at": order.updated_at} for order in changed
        ]).rowcount
        if matched != len(changed):  # filled (or cancelled) by another writer already: never a second trade
            raise Conflict(f"{len(changed) - matched} of {len(changed)} orders were no longer open")
    if trades:
        conn.execute(_INSERT_TRADES, [
            {"order_id": trade.order_id, "instrument_key": trade.instrument_key, "symbol": trade.symbol,
             "exchange": trade.exchange, "product": trade.product, "side": trade.side, "quantity": trade.quantity,
             "price": trade.price, "traded_at": trade.at} for trade in trades
        ])


def save_positions(conn: Connection, positions: Sequence[Position], stored: set[tuple[str, str]]) -> None:
    new, known = [], []
    for position in positions:
        values = {"quantity": position.quantity, "cost": position.cost, "realised": position.realised,
                  "updated_at": position.updated_at}
        if (position.instrument_key, position.product) in stored:
            known.append({"b_instrument_key": position.instrument_key, "b_product": position.product, **values})
        else:
            new.append({"instrument_key": position.instrument_key, "product": position.product,
                        "symbol": position.symbol, "exchange": position.exchange, **values})
    if new:
        conn.execute(_INSERT_POSITIONS, new)
    if known:
        conn.execute(_UPDATE_POSITION, known)
