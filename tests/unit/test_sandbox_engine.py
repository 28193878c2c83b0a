"""The sandbox's in-memory trigger engine: Upstox GTT rules, driven by ticks, no database."""
from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from openalgo_gtt.domain.model import (
    ABOVE, BELOW, BUY, CANCELLED, COMPLETED, ENTRY, EXPIRED, IMMEDIATE, INACTIVE, MULTIPLE, OPEN,
    SCHEDULED, SELL, SINGLE, STOPLOSS, TARGET, GttRequest, GttRule,
)
from openalgo_gtt.brokers.errors import InputRejected
from openalgo_gtt.brokers.base import Tick
from openalgo_gtt.brokers.sandbox.engine import TriggerEngine
from openalgo_gtt.brokers.sandbox.model import (
    CODE_NOT_FOUND, CODE_NOT_LIVE, check_tick, expiry_for, validate_request,
)
from openalgo_gtt.brokers.sandbox.quotes import QuoteBook
from openalgo_gtt.domain.clock import IST

D = Decimal
KEY = "NSE_EQ|INE669E01016"
OTHER = "NSE_EQ|INE009A01021"
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)  # 09:30 IST


def single(trigger_type: str, price: str, side: str = BUY, product: str = "D", quantity: int = 1,
           key: str = KEY) -> GttRequest:
    return GttRequest(SINGLE, key, side, product, quantity, (GttRule(ENTRY, trigger_type, D(price)),))


def bracket(side: str, entry: str, target: str | None, stop: str | None, *, entry_type: str = ABOVE,
            gap: str | None = None, quantity: int = 1, key: str = KEY) -> GttRequest:
    rules = [GttRule(ENTRY, entry_type, D(entry))]
    if target is not None:
        rules.append(GttRule(TARGET, IMMEDIATE, D(target)))
    if stop is not None:
        rules.append(GttRule(STOPLOSS, IMMEDIATE, D(stop), trailing_gap=None if gap is None else D(gap)))
    return GttRequest(MULTIPLE, key, side, "D", quantity, tuple(rules))


@pytest.fixture
def engine():
    counter = itertools.count(1)
    return TriggerEngine(lambda at: f"ORD{next(counter)}")


def place(engine, request, ltp="100", gtt_id=None, at=T0):
    gtt_id = gtt_id or f"GTT-S{len(engine) + 1:06d}"
    engine.place(gtt_id, request, ltp=D(ltp), at=at)
    return engine.get(gtt_id)


def run(engine, *prices, key=KEY, at=T0):
    events = []
    for price in prices:
        events.extend(engine.tick(key, D(price), at))
    return events


def statuses(gtt):
    return {rule.strategy: rule.status for rule in gtt.rules}


# --- SINGLE ----------------------------------------------------------------------------------------


def test_above_fires_when_the_price_reaches_the_trigger_and_not_before(engine):
    gtt = place(engine, single(ABOVE, "100"), ltp="95")
    assert run(engine, "96", "99.95", "99.99") == []
    assert statuses(gtt) == {ENTRY: SCHEDULED}
    (event,) = run(engine, "100")
    assert (event.strategy, event.transaction_type, event.price, event.ltp) == (ENTRY, BUY, D("100"), D("100"))
    assert statuses(gtt) == {ENTRY: COMPLETED} and gtt.rules[0].order_id == event.order_id
    assert not gtt.live


def test_a_gap_through_the_trigger_fills_at_the_trigger_price(engine):
    place(engine, single(ABOVE, "100"), ltp="95")
    (event,) = run(engine, "104.5")
    assert event.price == D("100") and event.ltp == D("104.5")


def test_below_fires_when_the_price_falls_to_the_trigger(engine):
    gtt = place(engine, single(BELOW, "90", side=SELL, quantity=5), ltp="95")
    assert run(engine, "91", "90.05", "120") == []
    (event,) = run(engine, "90")
    assert (event.transaction_type, event.quantity, event.price) == (SELL, 5, D("90"))
    assert statuses(gtt) == {ENTRY: COMPLETED}


def test_other_instruments_do_not_fire(engine):
    place(engine, single(ABOVE, "100"), ltp="95")
    assert run(engine, "500", key=OTHER) == []


def test_placing_never_fires_an_above_or_below_rule_the_next_tick_does(engine):
    gtt = place(engine, single(ABOVE, "100"), ltp="105")  # already above: Upstox would fire on the next tick
    assert statuses(gtt) == {ENTRY: SCHEDULED}
    assert [e.strategy for e in run(engine, "105")] == [ENTRY]


def test_a_rule_fires_exactly_once(engine):
    place(engine, single(ABOVE, "100"), ltp="95")
    place(engine, single(BELOW, "90"), ltp="95")
    events = run(engine, "100", "101", "100", "89", "90", "88", "100", "80")
    assert [(e.gtt_id, e.strategy) for e in events] == [("GTT-S000001", ENTRY), ("GTT-S000002", ENTRY)]
    assert len({e.order_id for e in events}) == 2
    assert engine.indexed_rules() == 0


def test_many_triggers_fire_in_price_order_and_the_rest_stay(engine):
    for price in ("103", "101", "102", "110"):
        place(engine, single(ABOVE, price), ltp="100")
    events = run(engine, "102.5")
    assert [e.price for e in events] == [D("101"), D("102")]
    assert [e.price for e in run(engine, "200")] == [D("103"), D("110")]


def test_immediate_entry_fills_at_once_when_the_limit_is_marketable(engine):
    gtt = place(engine, single(IMMEDIATE, "101"), ltp="100")  # BUY limit 101 with the market at 100
    assert statuses(gtt) == {ENTRY: COMPLETED} and gtt.rules[0].order_id
    assert [e.price for e in engine.take_changes().fires] == [D("101")]


def test_immediate_entry_rests_as_an_open_limit_until_the_price_reaches_it(engine):
    gtt = place(engine, single(IMMEDIATE, "98"), ltp="100")  # BUY limit below the market
    assert statuses(gtt) == {ENTRY: OPEN} and gtt.rules[0].order_id == "ORD1" and gtt.live
    assert run(engine, "99", "98.05") == []
    (event,) = run(engine, "97.5")
    assert (event.price, event.order_id) == (D("98"), "ORD1")
    assert statuses(gtt) == {ENTRY: COMPLETED}

    sell = place(engine, single(IMMEDIATE, "105", side=SELL), ltp="100")  # SELL limit above the market
    assert statuses(sell) == {ENTRY: OPEN}
    assert run(engine, "104") == [] and [e.price for e in run(engine, "105")] == [D("105")]


# --- brackets --------------------------------------------------------------------------------------


def test_bracket_exits_wait_inactive_until_the_entry_fills_then_arm(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95"), ltp="98")
    assert statuses(gtt) == {ENTRY: SCHEDULED, TARGET: INACTIVE, STOPLOSS: INACTIVE}
    # One tick gapping through the ENTRY and the TARGET: the ENTRY fills, arms the exits, and the
    # same price then reaches the armed TARGET.
    events = run(engine, "111")
    assert [(e.strategy, e.price) for e in events] == [(ENTRY, D("100")), (TARGET, D("110"))]
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: COMPLETED, STOPLOSS: CANCELLED}


def test_bracket_before_entry_ignores_exit_prices(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95"), ltp="98")
    assert run(engine, "94", "90", "99") == []
    assert statuses(gtt) == {ENTRY: SCHEDULED, TARGET: INACTIVE, STOPLOSS: INACTIVE}


def test_buy_bracket_target_fires_and_cancels_the_stoploss(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95"), ltp="98")
    assert [e.strategy for e in run(engine, "100")] == [ENTRY]
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: SCHEDULED, STOPLOSS: SCHEDULED}
    assert run(engine, "109.95", "95.05") == []
    (event,) = run(engine, "110")
    assert (event.strategy, event.transaction_type, event.price) == (TARGET, SELL, D("110"))
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: COMPLETED, STOPLOSS: CANCELLED}
    assert run(engine, "90") == []  # the cancelled stop never fires


def test_buy_bracket_stoploss_fires_and_cancels_the_target(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95"), ltp="98")
    run(engine, "100")
    (event,) = run(engine, "94")
    assert (event.strategy, event.transaction_type, event.price, event.ltp) == (STOPLOSS, SELL, D("95"), D("94"))
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: CANCELLED, STOPLOSS: COMPLETED}
    assert run(engine, "120") == []


def test_sell_bracket_mirrors(engine):
    gtt = place(engine, bracket(SELL, "100", "90", "105", entry_type=BELOW), ltp="102")
    assert run(engine, "100.05") == []
    assert [e.strategy for e in run(engine, "100")] == [ENTRY]
    assert run(engine, "104.95", "90.05") == []
    (event,) = run(engine, "90")
    assert (event.strategy, event.transaction_type) == (TARGET, BUY)
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: COMPLETED, STOPLOSS: CANCELLED}

    gtt2 = place(engine, bracket(SELL, "100", "90", "105", entry_type=BELOW), ltp="102")
    run(engine, "99")
    (event,) = run(engine, "105")
    assert (event.strategy, event.price) == (STOPLOSS, D("105"))
    assert statuses(gtt2)[TARGET] == CANCELLED


def test_two_rule_bracket_with_only_a_stoploss(engine):
    gtt = place(engine, bracket(BUY, "100", None, "95"), ltp="98")
    run(engine, "100")
    assert statuses(gtt) == {ENTRY: COMPLETED, STOPLOSS: SCHEDULED}
    assert [e.strategy for e in run(engine, "95")] == [STOPLOSS]


def test_entry_and_stop_in_the_same_gap_down(engine):
    # BUY the dip at 100 (BELOW), stop 95: one tick from 101 to 94 fills the entry and the stop.
    gtt = place(engine, bracket(BUY, "100", "110", "95", entry_type=BELOW), ltp="101")
    events = run(engine, "94")
    assert [(e.strategy, e.price) for e in events] == [(ENTRY, D("100")), (STOPLOSS, D("95"))]
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: CANCELLED, STOPLOSS: COMPLETED}


# --- trailing stop-loss ------------------------------------------------------------------------------


def test_buy_trailing_stop_follows_the_price_up_never_down_and_fires_on_the_way_back(engine):
    gtt = place(engine, bracket(BUY, "100", "130", "95", gap="5"), ltp="98")
    stop = gtt.rule(STOPLOSS)
    assert run(engine, "90") == [] and stop.trigger_price == D("95")  # not armed: no trailing before entry
    run(engine, "100")
    assert stop.trigger_price == D("95")  # 100 - 5 is not above 95
    run(engine, "103")
    assert stop.trigger_price == D("98")
    run(engine, "112.5", "108", "110")
    assert stop.trigger_price == D("107.5")  # follows up, never down
    assert run(engine, "107.55") == []
    (event,) = run(engine, "107.5")
    assert (event.strategy, event.price) == (STOPLOSS, D("107.5"))
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: CANCELLED, STOPLOSS: COMPLETED}
    run(engine, "200")
    assert stop.trigger_price == D("107.5")  # a filled stop no longer trails


def test_sell_trailing_stop_follows_the_price_down(engine):
    gtt = place(engine, bracket(SELL, "100", "70", "105", entry_type=BELOW, gap="4"), ltp="102")
    stop = gtt.rule(STOPLOSS)
    run(engine, "100", "99")
    assert stop.trigger_price == D("103")
    run(engine, "90", "93")
    assert stop.trigger_price == D("94")  # follows down, never up
    assert run(engine, "93.95") == []
    (event,) = run(engine, "94.5")
    assert (event.strategy, event.transaction_type, event.price) == (STOPLOSS, BUY, D("94"))


def test_many_trailing_stops_each_follow_by_their_own_gap(engine):
    gtts = [place(engine, bracket(BUY, "100", "200", "90", gap=gap), ltp="99") for gap in ("1", "2", "5", "20")]
    run(engine, "100", "110")
    assert [g.rule(STOPLOSS).trigger_price for g in gtts] == [D("109"), D("108"), D("105"), D("90")]
    events = run(engine, "106")
    assert sorted(e.price for e in events) == [D("108"), D("109")]


# --- expiry --------------------------------------------------------------------------------------------


def test_expiry_times_follow_the_product():
    placed = datetime(2026, 3, 2, 20, 0, tzinfo=timezone.utc)  # 01:30 IST on 3 March
    assert expiry_for("I", placed).astimezone(IST).replace(tzinfo=None) == datetime(2026, 3, 3, 23, 59, 59)
    assert expiry_for("D", placed).astimezone(IST).replace(tzinfo=None) == datetime(2027, 3, 3, 23, 59, 59)
    assert expiry_for("MTF", T0).astimezone(IST).replace(tzinfo=None) == datetime(2027, 3, 2, 23, 59, 59)
    leap = datetime(2028, 2, 29, 6, 0, tzinfo=timezone.utc)
    assert expiry_for("D", leap).astimezone(IST).date().isoformat() == "2029-02-28"


def test_intraday_gtt_expires_at_the_end_of_the_ist_day():
    engine2 = TriggerEngine(lambda at: "X")
    intraday = place(engine2, single(ABOVE, "100", product="I"), ltp="98")
    end = datetime(2026, 3, 2, 23, 59, 59, tzinfo=IST)
    assert intraday.expires_at == end
    assert engine2.expire(end) == [] and statuses(intraday) == {ENTRY: SCHEDULED}
    assert engine2.expire(end + timedelta(seconds=1)) == [intraday]
    assert statuses(intraday) == {ENTRY: EXPIRED} and not intraday.live
    assert engine2.tick(KEY, D("150"), end + timedelta(seconds=2)) == []
    assert engine2.indexed_rules() == 0
    with pytest.raises(InputRejected) as caught:
        engine2.cancel(intraday.gtt_id, end + timedelta(seconds=3))
    assert caught.value.code == CODE_NOT_LIVE


def test_expiry_of_an_armed_bracket_expires_its_exits(engine):
    intraday = GttRequest(MULTIPLE, KEY, BUY, "I", 1, (GttRule(ENTRY, ABOVE, D("100")),
                                                        GttRule(TARGET, IMMEDIATE, D("110"))))
    gtt = place(engine, intraday, ltp="98")
    run(engine, "100")
    engine.expire(gtt.expires_at + timedelta(microseconds=1))
    assert statuses(gtt) == {ENTRY: COMPLETED, TARGET: EXPIRED}


# --- modify and cancel ------------------------------------------------------------------------------


def test_modify_before_the_entry_replaces_everything(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95"), ltp="98")
    engine.modify(gtt.gtt_id, bracket(BUY, "102", "112", "97", quantity=3), ltp=D("98"), at=T0)
    assert gtt.quantity == 3 and [r.trigger_price for r in gtt.rules] == [D("102"), D("112"), D("97")]
    assert run(engine, "101") == []
    assert [e.price for e in run(engine, "102")] == [D("102")]


def test_modify_after_the_entry_replaces_only_the_exits(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95", quantity=2), ltp="98")
    run(engine, "100")
    with pytest.raises(InputRejected, match="quantity"):
        engine.modify(gtt.gtt_id, bracket(BUY, "100", "120", "90", quantity=5), ltp=D("100"), at=T0)
    engine.modify(gtt.gtt_id, bracket(BUY, "999", "120", "90", quantity=2), ltp=D("100"), at=T0)
    assert [(r.strategy, r.trigger_price, r.status) for r in gtt.rules] == [
        (ENTRY, D("100"), COMPLETED), (TARGET, D("120"), SCHEDULED), (STOPLOSS, D("90"), SCHEDULED)]
    assert run(engine, "110", "95") == []  # the old prices are gone from the index
    assert [e.strategy for e in run(engine, "120")] == [TARGET]


def test_cancel_stops_every_live_rule_and_unknown_ids_are_refused(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95"), ltp="98")
    engine.cancel(gtt.gtt_id, T0)
    assert statuses(gtt) == {ENTRY: CANCELLED, TARGET: CANCELLED, STOPLOSS: CANCELLED}
    assert run(engine, "100", "120") == []
    with pytest.raises(InputRejected) as caught:
        engine.cancel("GTT-S404", T0)
    assert (caught.value.code, caught.value.http_status) == (CODE_NOT_FOUND, 404)
    with pytest.raises(InputRejected):
        engine.modify(gtt.gtt_id, bracket(BUY, "100", "110", "95"), ltp=D("98"), at=T0)


def test_the_journal_records_what_changed_and_the_status_before(engine):
    gtt = place(engine, bracket(BUY, "100", "110", "95", gap="2"), ltp="98")
    first = engine.take_changes()
    assert first.placed == {gtt.gtt_id} and not first.touched
    run(engine, "100", "104")
    changes = engine.take_changes()
    assert changes.touched == {gtt.gtt_id: {ENTRY: SCHEDULED, TARGET: INACTIVE, STOPLOSS: INACTIVE}}
    assert [e.strategy for e in changes.fires] == [ENTRY]
    run(engine, "106")
    assert engine.take_changes().touched == {gtt.gtt_id: {STOPLOSS: SCHEDULED}}  # only the stop moved
    assert not engine.take_changes()


# --- validation (Upstox's rules) ----------------------------------------------------------------------


RULE = GttRule(ENTRY, ABOVE, D("100"))
TG, SL = GttRule(TARGET, IMMEDIATE, D("110")), GttRule(STOPLOSS, IMMEDIATE, D("90"))


@pytest.mark.parametrize("request_, fragment", [
    (GttRequest("OCO", KEY, BUY, "D", 1, (RULE,)), "type"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, ()), "exactly 1"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (RULE, GttRule(TARGET, IMMEDIATE, D("110")))), "exactly 1"),
    (GttRequest(MULTIPLE, KEY, BUY, "D", 1, (RULE,)), "2 or 3"),
    (GttRequest(MULTIPLE, KEY, BUY, "D", 1, (RULE, TG, SL, GttRule(TARGET, IMMEDIATE, D("2")))), "2 or 3"),
    (GttRequest(MULTIPLE, KEY, BUY, "D", 1, (RULE, RULE)), "duplicate"),
    (GttRequest(MULTIPLE, KEY, BUY, "D", 1, (TG, SL)), "ENTRY"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (GttRule(TARGET, IMMEDIATE, D("1")),)), "ENTRY"),
    (GttRequest(MULTIPLE, KEY, BUY, "D", 1, (RULE, GttRule(TARGET, ABOVE, D("110")))), "IMMEDIATE"),
    (GttRequest(MULTIPLE, KEY, BUY, "D", 1, (RULE, GttRule(STOPLOSS, BELOW, D("90")))), "IMMEDIATE"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (GttRule(ENTRY, "SIDEWAYS", D("1")),)), "ABOVE, BELOW or IMMEDIATE"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (GttRule("EXIT", ABOVE, D("1")),)), "strategy"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (GttRule(ENTRY, ABOVE, D("0")),)), "positive"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (GttRule(ENTRY, ABOVE, D("-5")),)), "positive"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (GttRule(ENTRY, ABOVE, D("NaN")),)), "finite"),
    (GttRequest(SINGLE, KEY, BUY, "D", 0, (RULE,)), "quantity"),
    (GttRequest(SINGLE, KEY, BUY, "D", True, (RULE,)), "quantity"),
    (GttRequest(SINGLE, KEY, "HOLD", "D", 1, (RULE,)), "transaction_type"),
    (GttRequest(SINGLE, KEY, BUY, "CNC", 1, (RULE,)), "product"),
    (GttRequest(SINGLE, "IDEA", BUY, "D", 1, (RULE,)), "instrument_token"),
    (GttRequest(SINGLE, KEY, BUY, "D", 1, (GttRule(ENTRY, ABOVE, D("100"), trailing_gap=D("1")),)), "STOPLOSS"),
    (GttRequest(MULTIPLE, KEY, BUY, "D", 1, (RULE, GttRule(STOPLOSS, IMMEDIATE, D("90"), trailing_gap=D("0")))),
     "trailing_gap"),
])
def test_invalid_requests_are_refused_like_upstox(request_, fragment):
    with pytest.raises(InputRejected, match=fragment) as caught:
        validate_request(request_)
    assert caught.value.http_status == 400 and caught.value.may_have_reached is False


def test_an_invalid_place_changes_nothing(engine):
    with pytest.raises(InputRejected):
        place(engine, GttRequest(SINGLE, KEY, BUY, "D", 0, (RULE,)))
    assert len(engine) == 0 and not engine.take_changes()


def test_ticks_are_checked_and_made_exact():
    tick = check_tick(Tick(KEY, "9.55", open=9.5))
    assert (tick.ltp, tick.open) == (D("9.55"), D("9.5"))
    naive = check_tick(Tick(KEY, D("1"), at=datetime(2026, 1, 1, 9, 0)))
    assert naive.at.tzinfo is timezone.utc
    for bad in (Tick(KEY, D("0")), Tick(KEY, D("-1")), Tick(KEY, "abc"), Tick("", D("1")), Tick(KEY, D("Inf")),
                Tick(KEY, D("1"), open=D("0"))):
        with pytest.raises(InputRejected):
            check_tick(bad)


# --- quotes ------------------------------------------------------------------------------------------


def test_the_first_tick_of_an_ist_day_sets_the_open_unless_given():
    book = QuoteBook()
    book.update(KEY, D("10"), None, T0)
    book.update(KEY, D("11"), None, T0 + timedelta(hours=1))
    assert book.quotes([KEY, OTHER]) == {KEY: book.quotes([KEY])[KEY]}
    quote = book.quotes([KEY])[KEY]
    assert (quote.last_price, quote.open) == (D("11"), D("10"))
    book.update(KEY, D("11.5"), D("9.9"), T0 + timedelta(hours=2))  # an explicit open wins
    assert book.quotes([KEY])[KEY].open == D("9.9")
    next_day = datetime(2026, 3, 2, 19, 0, tzinfo=timezone.utc)  # 00:30 IST on 3 March
    book.update(KEY, D("12"), None, next_day)
    assert (book.quotes([KEY])[KEY].open, book.quotes([KEY])[KEY].last_price) == (D("12"), D("12"))


# --- the index agrees with a plain scan -----------------------------------------------------------------


def _reference_fires(requests_and_prices, ticks):
    """A deliberately naive model: every live rule checked on every tick."""
    gtts = []
    for request, _ in requests_and_prices:
        rules = [{"s": r.strategy, "t": r.trigger_type, "p": r.trigger_price, "g": r.trailing_gap,
                  "st": SCHEDULED if r.strategy == ENTRY else INACTIVE} for r in request.rules]
        gtts.append((request.transaction_type, rules))
    fired = []
    for ltp in ticks:
        changed = True
        while changed:
            changed = False
            for n, (side, rules) in enumerate(gtts):
                for rule in rules:
                    if rule["st"] != SCHEDULED:
                        continue
                    if rule["s"] == ENTRY:
                        hit = ltp >= rule["p"] if rule["t"] == ABOVE else ltp <= rule["p"]
                    else:
                        profit_up = (side == BUY) == (rule["s"] == TARGET)
                        hit = ltp >= rule["p"] if profit_up else ltp <= rule["p"]
                    if not hit:
                        continue
                    rule["st"] = COMPLETED
                    fired.append((ltp, n, rule["s"], rule["p"]))
                    changed = True
                    for other in rules:
                        if other is rule:
                            continue
                        if rule["s"] == ENTRY and other["st"] == INACTIVE:
                            other["st"] = SCHEDULED
                        elif rule["s"] != ENTRY and other["st"] == SCHEDULED:
                            other["st"] = CANCELLED
        for side, rules in gtts:
            for rule in rules:
                if rule["s"] == STOPLOSS and rule["g"] and rule["st"] == SCHEDULED:
                    rule["p"] = max(rule["p"], ltp - rule["g"]) if side == BUY else min(rule["p"], ltp + rule["g"])
    return sorted(fired)


def test_indexed_engine_matches_a_plain_scan_on_a_random_walk():
    rng = random.Random(11)
    placed = []
    for _ in range(60):
        side = rng.choice((BUY, SELL))
        entry = D(rng.randrange(9000, 11000)) / 100
        if rng.random() < 0.3:
            placed.append((single(rng.choice((ABOVE, BELOW)), str(entry), side=side), None))
            continue
        up = side == BUY
        target = entry + (1 if up else -1) * D(rng.randrange(50, 500)) / 100
        stop = entry - (1 if up else -1) * D(rng.randrange(50, 500)) / 100
        gap = str(D(rng.randrange(20, 300)) / 100) if rng.random() < 0.5 else None
        placed.append((bracket(side, str(entry), str(target), str(stop), entry_type=rng.choice((ABOVE, BELOW)),
                               gap=gap), None))
    price, ticks = D(100), []
    for _ in range(1500):
        price = max(D("50"), price + D(rng.randrange(-60, 61)) / 100)
        ticks.append(price)

    counter = itertools.count()
    engine = TriggerEngine(lambda at: str(next(counter)))
    ids = {}
    for n, (request, _) in enumerate(placed):
        engine.place(f"GTT-S{n:04d}", request, ltp=D(100), at=T0)
        ids[f"GTT-S{n:04d}"] = n
    fired = []
    for ltp in ticks:
        fired.extend((ltp, ids[e.gtt_id], e.strategy, e.price) for e in engine.tick(KEY, ltp, T0))
    expected = _reference_fires(placed, ticks)
    assert len(expected) > 50  # the walk exercises entries, exits and trailing stops
    assert sorted(fired) == expected
