"""The sandbox broker on a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""
from __future__ import annotations

import multiprocessing
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, CANCELLED, COMPLETED, ENTRY, EXPIRED, IMMEDIATE, INACTIVE, MULTIPLE,
    SCHEDULED, SELL, SINGLE, STOPLOSS, TARGET, GttRequest, GttRule,
)
from openalgo_gtt.brokers.errors import InputRejected
from openalgo_gtt.brokers.sandbox import NoPriceYet, SandboxBroker, Tick
from openalgo_gtt.domain.clock import IST
from openalgo_gtt.store.db import make_session_factory
from openalgo_gtt.store.models import Instrument
from openalgo_gtt.store.sandbox import SandboxRepository
from openalgo_gtt.store.sandbox_models import SandboxFill, SandboxGtt, SandboxGttRule, SandboxQuote

D = Decimal
IDEA = "NSE_EQ|INE669E01016"
INFY = "NSE_EQ|INE009A01021"


def single(trigger_type: str, price: str, side: str = BUY, product: str = "D", quantity: int = 1,
           key: str = IDEA) -> GttRequest:
    return GttRequest(SINGLE, key, side, product, quantity, (GttRule(ENTRY, trigger_type, D(price)),))


def bracket(side: str, entry: str, target: str, stop: str, *, gap: str | None = None, quantity: int = 1,
            key: str = IDEA, entry_type: str = ABOVE) -> GttRequest:
    return GttRequest(MULTIPLE, key, side, "D", quantity, (
        GttRule(ENTRY, entry_type, D(entry)),
        GttRule(TARGET, IMMEDIATE, D(target)),
        GttRule(STOPLOSS, IMMEDIATE, D(stop), trailing_gap=None if gap is None else D(gap)),
    ))


def ticks(*prices: str, key: str = IDEA) -> list[Tick]:
    return [Tick(key, D(price)) for price in prices]


def statuses(gtt) -> dict[str, str]:
    return {rule.strategy: rule.status for rule in gtt.rules}


def test_place_list_get_modify_cancel(broker, sessions, clock):
    with sessions.begin() as session:
        session.add(Instrument(instrument_key=IDEA, segment="NSE_EQ", exchange="NSE", symbol="IDEA",
                               trading_symbol="IDEA", lot_size=1, tick_size=D("0.01")))
    broker.apply_ticks(ticks("9.50"))
    gtt_id = broker.place_gtt(single(ABOVE, "9.55", quantity=3))
    assert gtt_id.startswith("GTT-S") and gtt_id[5:].isdigit()

    gtt = broker.get_gtt(gtt_id)
    assert (gtt.gtt_id, gtt.type, gtt.instrument_key, gtt.segment, gtt.trading_symbol) == (
        gtt_id, SINGLE, IDEA, "NSE_EQ", "IDEA")
    assert (gtt.quantity, gtt.product, gtt.created_at, gtt.can_fire) == (3, "D", clock.now, True)
    assert gtt.expires_at.astimezone(IST).replace(tzinfo=None) == datetime(2027, 3, 2, 23, 59, 59)
    (rule,) = gtt.rules
    assert (rule.strategy, rule.trigger_type, rule.trigger_price, rule.transaction_type, rule.status) == (
        ENTRY, ABOVE, D("9.55"), BUY, SCHEDULED)

    second = broker.place_gtt(bracket(SELL, "9.00", "8.50", "9.30", entry_type=BELOW))
    assert second != gtt_id
    assert [g.gtt_id for g in broker.list_gtts()] == [gtt_id, second]
    assert statuses(broker.get_gtt(second)) == {ENTRY: SCHEDULED, TARGET: INACTIVE, STOPLOSS: INACTIVE}

    assert broker.modify_gtt(gtt_id, single(ABOVE, "9.70", quantity=5)) == gtt_id
    modified = broker.get_gtt(gtt_id)
    assert modified.quantity == 5 and modified.rules[0].trigger_price == D("9.70")
    assert broker.apply_ticks(ticks("9.60")) == []  # the old 9.55 trigger is gone

    assert broker.cancel_gtt(second) == second
    assert statuses(broker.get_gtt(second)) == {ENTRY: CANCELLED, TARGET: CANCELLED, STOPLOSS: CANCELLED}
    with pytest.raises(InputRejected, match="no longer"):
        broker.cancel_gtt(second)
    with pytest.raises(InputRejected, match="no longer"):
        broker.modify_gtt(second, bracket(SELL, "9.00", "8.50", "9.30"))

    assert broker.get_gtt("GTT-S99999999999999") is None
    with pytest.raises(InputRejected) as caught:
        broker.cancel_gtt("GTT-S99999999999999")
    assert caught.value.http_status == 404
    with pytest.raises(InputRejected) as caught:
        broker.get_gtt("12345")
    assert caught.value.code == "UDAPI1135"

    (event,) = broker.apply_ticks(ticks("9.75"))
    assert (event.gtt_id, event.price, event.quantity) == (gtt_id, D("9.70"), 5)
    assert statuses(broker.get_gtt(gtt_id)) == {ENTRY: COMPLETED}
    (fill,) = broker.fills()
    assert (fill.order_id, fill.gtt_id, fill.price, fill.ltp, fill.transaction_type) == (
        event.order_id, gtt_id, D("9.7"), D("9.75"), BUY)


def test_invalid_input_is_refused_and_stores_nothing(broker, sessions):
    broker.apply_ticks(ticks("100"))
    bad = GttRequest(MULTIPLE, IDEA, BUY, "D", 1, (GttRule(ENTRY, ABOVE, D("101")), GttRule(TARGET, BELOW, D("110"))))
    with pytest.raises(InputRejected, match="IMMEDIATE") as caught:
        broker.place_gtt(bad)
    assert caught.value.http_status == 400
    with pytest.raises(InputRejected):
        broker.apply_ticks([Tick(IDEA, D("-1"))])
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SandboxGtt)) == 0


def test_no_price_yet_until_a_tick_arrives(broker):
    with pytest.raises(NoPriceYet) as caught:
        broker.place_gtt(single(ABOVE, "1600", key=INFY))
    error = caught.value
    assert isinstance(error, InputRejected) and error.http_status == 409 and error.instrument_key == INFY
    assert "POST /api/v1/sandbox/ticks" in error.message
    assert broker.list_gtts() == []
    broker.apply_ticks([Tick(INFY, D("1550"), open=D("1540"))])
    assert broker.place_gtt(single(ABOVE, "1600", key=INFY)).startswith("GTT-S")
    quote = broker.quotes([INFY, IDEA])
    assert list(quote) == [INFY] and (quote[INFY].last_price, quote[INFY].open) == (D("1550"), D("1540"))


def test_no_price_yet_names_the_openalgo_symbol_and_exchange_not_the_instrument_key(broker, sessions):
    with sessions.begin() as session:
        session.add(Instrument(instrument_key=INFY, segment="NSE_EQ", exchange="NSE", symbol="INFY",
                               trading_symbol="INFY", lot_size=1, tick_size=D("0.05")))
    with pytest.raises(NoPriceYet) as caught:
        broker.place_gtt(single(ABOVE, "1600", key=INFY))
    message = caught.value.message
    assert "no price for INFY on NSE yet" in message and "push a tick" in message
    assert "INE009A01021" not in message and INFY not in message


def test_restart_mid_trail_loses_nothing_and_fires_once(sessions, clock):
    first = SandboxBroker(SandboxRepository(sessions), clock=clock)
    first.apply_ticks(ticks("98"))
    gtt_id = first.place_gtt(bracket(BUY, "100", "130", "95", gap="3"))
    fired = first.apply_ticks(ticks("100", "104", "107.5", "106"))
    assert [e.strategy for e in fired] == [ENTRY]
    assert first.get_gtt(gtt_id).rules[2].trigger_price == D("104.5")
    del first

    restarted = SandboxBroker(SandboxRepository(sessions), clock=clock)  # a new process on the same database
    gtt = restarted.get_gtt(gtt_id)
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: SCHEDULED, STOPLOSS: SCHEDULED}
    assert (gtt.rules[2].trigger_price, gtt.rules[2].trailing_gap) == (D("104.5"), D("3"))
    assert restarted.quotes([IDEA])[IDEA].last_price == D("106")
    restarted.apply_ticks(ticks("108"))  # keeps trailing from where it was
    assert restarted.get_gtt(gtt_id).rules[2].trigger_price == D("105")
    (event,) = restarted.apply_ticks(ticks("104.9"))
    assert (event.strategy, event.price, event.transaction_type) == (STOPLOSS, D("105"), SELL)

    again = SandboxBroker(SandboxRepository(sessions), clock=clock)
    assert again.apply_ticks(ticks("100", "140", "90")) == []  # nothing left to fire
    assert statuses(again.get_gtt(gtt_id)) == {ENTRY: COMPLETED, TARGET: CANCELLED, STOPLOSS: COMPLETED}
    assert [(f.strategy, f.price) for f in again.fills(gtt_id)] == [(ENTRY, D("100")), (STOPLOSS, D("105"))]
    next_id = again.place_gtt(single(BELOW, "80"))
    assert next_id > gtt_id  # the id counter survived too


def test_ticks_that_fire_nothing_write_no_gtt_rows(broker, sessions):
    broker.apply_ticks(ticks("100"))
    gtt_id = broker.place_gtt(single(ABOVE, "110"))
    with sessions() as session:
        revision = session.scalar(select(SandboxGtt.revision).where(SandboxGtt.gtt_id == gtt_id))
    broker.apply_ticks(ticks("101", "102", "103"))
    with sessions() as session:
        assert session.scalar(select(SandboxGtt.revision).where(SandboxGtt.gtt_id == gtt_id)) == revision
        assert session.scalar(select(SandboxQuote.last_price).where(SandboxQuote.instrument_key == IDEA)) == D("103")


def test_intraday_gtts_expire_at_the_end_of_the_ist_day(broker, sessions, clock):
    broker.apply_ticks(ticks("100"))
    intraday = broker.place_gtt(single(ABOVE, "110", product="I"))
    delivery = broker.place_gtt(single(ABOVE, "110", product="D"))
    clock.now = datetime(2026, 3, 2, 23, 59, 59, tzinfo=IST)
    assert broker.get_gtt(intraday).can_fire
    clock.now += timedelta(seconds=1)
    assert statuses(broker.get_gtt(intraday)) == {ENTRY: EXPIRED}
    assert [e.gtt_id for e in broker.apply_ticks(ticks("120"))] == [delivery]
    assert statuses(SandboxBroker(SandboxRepository(sessions), clock=clock).get_gtt(intraday)) == {ENTRY: EXPIRED}


def test_concurrent_ticks_from_eight_threads_fire_each_trigger_exactly_once(broker, sessions):
    broker.apply_ticks(ticks("100"))
    placed = [broker.place_gtt(single(ABOVE, str(100 + n))) for n in range(1, 25)]
    placed += [broker.place_gtt(bracket(BUY, str(100 + n), str(110 + n), str(95 + n), gap="2")) for n in range(1, 9)]
    prices = [str(D(100) + D(step) / 4) for step in range(1, 161)] + ["90"]  # up to 140, then down to 90
    events, errors = [], []
    start = threading.Barrier(8)

    def push():
        try:
            start.wait()
            for at in range(0, len(prices), 8):
                events.extend(broker.apply_ticks(ticks(*prices[at:at + 8])))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    fired = sorted((e.gtt_id, e.strategy) for e in events)
    assert len(fired) == len(set(fired))  # nothing twice
    assert {gtt_id for gtt_id, _ in fired} == set(placed)
    assert len(fired) == 24 + 8 * 2  # every SINGLE; every bracket's ENTRY and one exit
    with sessions() as session:
        rows = session.execute(select(SandboxFill.gtt_id, SandboxFill.strategy)).all()
    assert sorted(tuple(row) for row in rows) == fired


def test_two_processes_on_one_database_share_state_and_fire_once(sessions, clock):
    a = SandboxBroker(SandboxRepository(sessions), clock=clock)
    b = SandboxBroker(SandboxRepository(sessions), clock=clock)  # stands in for a second worker process
    a.apply_ticks(ticks("100"))
    from_a = a.place_gtt(single(ABOVE, "101"))
    from_b = b.place_gtt(bracket(BUY, "102", "104", "99"))  # b saw a's tick
    assert {g.gtt_id for g in b.list_gtts()} == {from_a, from_b}
    events, errors = [], []

    def push(broker):
        try:
            for price in ("100.5", "101", "102", "103", "104", "105"):
                events.extend(broker.apply_ticks(ticks(price)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(broker,)) for broker in (a, b, a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted((e.gtt_id, e.strategy) for e in events) == [(from_a, ENTRY), (from_b, ENTRY), (from_b, TARGET)]
    assert statuses(a.get_gtt(from_b)) == statuses(b.get_gtt(from_b)) == {
        ENTRY: COMPLETED, TARGET: COMPLETED, STOPLOSS: CANCELLED}


def _push_from_another_process(database_url: str, prices: list[str], start, out) -> None:
    from openalgo_gtt.store.engine import make_engine

    engine = make_engine(database_url)
    try:
        broker = SandboxBroker(SandboxRepository(make_session_factory(engine)))
        start.wait()
        fired = []
        for price in prices:
            fired.extend((e.gtt_id, e.strategy) for e in broker.apply_ticks(ticks(price)))
        out.put(fired)
    except BaseException as exc:  # pragma: no cover - reported by the parent
        out.put(repr(exc))
    finally:
        engine.dispose()


def test_ticks_from_three_processes_fire_each_trigger_once(database_url, db_engine):
    broker = SandboxBroker(SandboxRepository(make_session_factory(db_engine)))
    broker.apply_ticks(ticks("100"))
    placed = [broker.place_gtt(single(ABOVE, str(100 + n))) for n in range(1, 11)]
    placed.append(broker.place_gtt(bracket(BUY, "101", "108", "90")))
    # The processes' ticks interleave, so the price seen goes up and down: keep the stop far.
    prices = [str(D(100) + D(step) / 2) for step in range(1, 23)] + ["95"]
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start, out = context.Barrier(3), context.Queue()
    db_engine.dispose()  # no pooled connection may be inherited by a forked child
    workers = [context.Process(target=_push_from_another_process, args=(database_url, prices, start, out))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(isinstance(result, list) for result in results), results
    fired = sorted(item for result in results for item in result)
    assert fired == sorted({(gtt_id, ENTRY) for gtt_id in placed} | {(placed[-1], TARGET)})
    with db_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(SandboxFill)) == len(fired)


def test_a_fire_someone_else_already_wrote_is_not_repeated(broker, sessions, caplog):
    broker.apply_ticks(ticks("100"))
    taken = broker.place_gtt(single(ABOVE, "101"))
    free = broker.place_gtt(single(ABOVE, "101.5"))
    # Another writer fires one rule without going through the protocol (no generation bump):
    # this process's conditional UPDATE for it must match nothing, and the process backs off,
    # reloads and applies the tick again.
    with sessions.begin() as session:
        session.execute(update(SandboxGttRule).where(SandboxGttRule.gtt_id == taken)
                        .values(status=COMPLETED, order_id="ELSEWHERE"))
    assert [e.gtt_id for e in broker.apply_ticks(ticks("102"))] == [free]
    assert "retrying once" in caplog.text  # the first attempt's conditional UPDATE matched 1 of 2
    gtt = broker.get_gtt(taken)
    assert (gtt.rules[0].status, gtt.rules[0].order_id) == (COMPLETED, "ELSEWHERE")
    assert [fill.gtt_id for fill in broker.fills()] == [free]
    assert broker.quotes([IDEA])[IDEA].last_price == D("102")  # the tick itself was applied
