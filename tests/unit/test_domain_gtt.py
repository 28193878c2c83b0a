"""The GTT rules: OpenAlgo request -> Upstox GTT, bracket math, modify guard, order book mapping."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from openalgo_gtt.domain.model import (
    ABOVE, BELOW, CANCELLED, COMPLETED, ENTRY, EXPIRED, FAILED, IMMEDIATE, INACTIVE, MULTIPLE, OPEN,
    PENDING, SCHEDULED, SINGLE, STOPLOSS, TARGET, TRIGGERED, BrokerGtt, GttRequest, GttRule,
    RuleState,
)
from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.book import book_entry, gtt_status
from openalgo_gtt.domain.clock import ist_text as format_ist
from openalgo_gtt.domain.intent import PlaceIntent
from openalgo_gtt.domain.modify import check_modify_allowed
from openalgo_gtt.domain.plan_bracket import plan_bracket
from openalgo_gtt.domain.plan_single import plan_single
from openalgo_gtt.domain.products import caller_product, upstox_product
from openalgo_gtt.domain.strategy import BracketPcts, bracket_prices
from openalgo_gtt.domain.prices import on_tick

D = Decimal


@dataclass(frozen=True)
class Instrument:
    """Stands in for domain.symbols.InstrumentInfo: only what the planner reads."""

    instrument_key: str = "NSE_EQ|INE669E01016"
    segment: str = "NSE_EQ"
    symbol: str = "IDEA"
    exchange: str = "NSE"
    lot_size: int = 1
    tick_size: Decimal = D("0.01")
    is_derivative: bool = False


IDEA = Instrument()
NIFTY_OPT = Instrument(instrument_key="NSE_FO|36708", segment="NSE_FO", symbol="NIFTY29DEC2624500CE", exchange="NFO",
                       lot_size=75, tick_size=D("0.05"),
                       is_derivative=True)


def single(**kw) -> PlaceIntent:
    base = dict(trigger_type="SINGLE", action="BUY", product="CNC", quantity=1)
    base.update(kw)
    return PlaceIntent(**base)


def bracket(**kw) -> PlaceIntent:
    base = dict(trigger_type="BRACKET", action="BUY", product="MIS", quantity=10)
    base.update(kw)
    return PlaceIntent(**base)


# --- products ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "code"), [("CNC", "D"), ("NRML", "D"), ("MIS", "I"), ("MTF", "MTF"), ("cnc", "D")])
def test_upstox_product(label, code):
    assert upstox_product(label) == code


@pytest.mark.parametrize("label", ["CO", "BO", "", None, "D"])
def test_upstox_product_refuses_others(label):
    with pytest.raises(DomainError, match="CNC, NRML, MIS, MTF"):
        upstox_product(label)


@pytest.mark.parametrize(("code", "derivative", "label"), [
    ("D", False, "CNC"), ("D", True, "NRML"), ("I", False, "MIS"), ("I", True, "MIS"),
    ("MTF", False, "MTF"), ("XYZ", False, "XYZ"),
])
def test_caller_product(code, derivative, label):
    assert caller_product(code, derivative) == label


@pytest.mark.parametrize("label", ["CNC", "MIS", "MTF"])
def test_product_round_trip_for_equities(label):
    assert caller_product(upstox_product(label), False) == label


# --- SINGLE -----------------------------------------------------------------------------------

def test_single_target_trigger_is_entry_above():
    plan = plan_single(single(triggerprice_tg=D("9.55")), IDEA)
    assert plan.request == GttRequest(
        type=SINGLE, instrument_key="NSE_EQ|INE669E01016", transaction_type="BUY", product="D", quantity=1,
        rules=(GttRule(ENTRY, ABOVE, D("9.55")),),
    )
    assert plan.warnings == ()
    assert plan.prices == {"entry": D("9.55")}
    (leg,) = plan.legs
    assert leg["role"] == "entry" and leg["action"] == "BUY" and leg["trigger_type"] == ABOVE
    assert leg["trigger_price"] == leg["price"] == D("9.55")
    assert leg["pricetype"] == "LIMIT" and leg["product"] == "CNC"


def test_single_stoploss_trigger_is_entry_below_and_sell():
    plan = plan_single(single(action="sell", product="MIS", quantity=5, triggerprice_sl=D("1480")), IDEA)
    assert plan.request.transaction_type == "SELL"
    assert plan.request.product == "I"
    assert plan.request.quantity == 5
    assert plan.request.rules == (GttRule(ENTRY, BELOW, D("1480.00")),)
    assert plan.legs[0]["product"] == "MIS"


@pytest.mark.parametrize("kw", [{}, {"triggerprice_tg": D(0), "triggerprice_sl": D(0)}])
def test_single_needs_a_trigger(kw):
    with pytest.raises(DomainError, match="exactly one trigger.*neither"):
        plan_single(single(**kw), IDEA)


def test_single_refuses_two_triggers():
    with pytest.raises(DomainError, match="both were given, use OCO") as info:
        plan_single(single(triggerprice_tg=D("10"), triggerprice_sl=D("9")), IDEA)
    assert info.value.details == {"triggerprice_tg": "10", "triggerprice_sl": "9"}


def test_single_refuses_negative_trigger():
    with pytest.raises(DomainError, match="negative"):
        plan_single(single(triggerprice_tg=D("10"), triggerprice_sl=D("-1")), IDEA)


def test_single_rounds_off_tick_trigger_with_warning():
    plan = plan_single(single(triggerprice_sl=D("9.5533")), replace(IDEA, tick_size=D("0.05")))
    assert plan.request.rules[0].trigger_price == D("9.55")
    assert plan.warnings == ("triggerprice_sl 9.5533 is not a multiple of the tick size 0.05; rounded to 9.55",)


def test_single_trigger_rounding_to_zero_is_refused():
    with pytest.raises(DomainError, match="must be positive"):
        plan_single(single(triggerprice_tg=D("0.02")), replace(IDEA, tick_size=D("0.05")))


def test_single_limit_price_differs_from_trigger_warns():
    # OpenAlgo's own sample: buy IDEA on a dip to 9.55 with a LIMIT at 9.50.
    plan = plan_single(single(price=D("9.5"), triggerprice_sl=D("9.55")), IDEA)
    assert plan.request.rules[0].trigger_price == D("9.55")
    assert len(plan.warnings) == 1
    assert "LIMIT at the trigger price 9.55" in plan.warnings[0] and "9.5" in plan.warnings[0]
    assert plan.legs[0]["price"] == D("9.55")


def test_single_limit_price_equal_to_trigger_is_silent():
    assert plan_single(single(price=D("9.550"), triggerprice_sl=D("9.55")), IDEA).warnings == ()


def test_single_market_uses_default_protection_and_warns():
    plan = plan_single(single(pricetype="MARKET", triggerprice_tg=D("1500")), IDEA)
    assert plan.request.rules[0].market_protection == 5
    assert any("no MARKET child" in w and "5%" in w for w in plan.warnings)
    assert plan.legs[0]["pricetype"] == "LIMIT" and plan.legs[0]["market_protection"] == 5


def test_single_market_protection_from_caller_or_argument():
    plan = plan_single(single(pricetype="MARKET", triggerprice_tg=D("1500"), market_protection=2), IDEA)
    assert plan.request.rules[0].market_protection == 2
    plan = plan_single(single(pricetype="MARKET", triggerprice_tg=D("1500")), IDEA, default_market_protection=3)
    assert plan.request.rules[0].market_protection == 3


def test_single_limit_ignores_market_protection_with_warning():
    plan = plan_single(single(triggerprice_tg=D("1500"), market_protection=2), IDEA)
    assert plan.request.rules[0].market_protection is None
    assert plan.warnings == ("market_protection is ignored for a LIMIT pricetype",)


@pytest.mark.parametrize("value", [-1, 101])
def test_single_market_protection_range(value):
    with pytest.raises(DomainError, match="market_protection"):
        plan_single(single(pricetype="MARKET", triggerprice_tg=D("1500"), market_protection=value), IDEA)


def test_single_warns_about_ignored_bracket_fields():
    plan = plan_single(single(triggerprice_tg=D("10"), stoploss=D("9"), target=D(0)), IDEA)
    assert plan.warnings == ("stoploss is ignored for a SINGLE GTT",)


def test_derivative_quantity_must_be_a_lot_multiple():
    with pytest.raises(DomainError, match="lot size 75 of NIFTY29DEC2624500CE on NFO") as info:
        plan_single(single(product="NRML", quantity=100, triggerprice_tg=D("120")), NIFTY_OPT)
    assert info.value.details == {"quantity": 100, "lot_size": 75}
    plan = plan_single(single(product="NRML", quantity=150, triggerprice_tg=D("120")), NIFTY_OPT)
    assert plan.request.quantity == 150 and plan.request.product == "D"


def test_equity_quantity_is_not_lot_checked():
    assert plan_single(single(quantity=7, triggerprice_tg=D("10")), replace(IDEA, lot_size=5)).request.quantity == 7


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5])
def test_quantity_must_be_positive_int(quantity):
    with pytest.raises(DomainError, match="quantity"):
        plan_single(single(quantity=quantity, triggerprice_tg=D("10")), IDEA)


@pytest.mark.parametrize(("kw", "match"), [
    ({"action": "HOLD"}, "action"), ({"product": "BO"}, "product"), ({"pricetype": "SL"}, "pricetype"),
    ({"trigger_type": "OCO"}, "SINGLE"),
])
def test_single_refuses_bad_fields(kw, match):
    with pytest.raises(DomainError, match=match):
        plan_single(single(triggerprice_tg=D("10"), **kw), IDEA)


def test_instrument_without_tick_cannot_be_traded():
    with pytest.raises(DomainError, match="no tick size"):
        plan_single(single(triggerprice_tg=D("10")), replace(IDEA, tick_size=D(0)))


def test_domain_error_is_a_value_error_with_message():
    err = DomainError("bad", {"x": 1})
    assert isinstance(err, ValueError) and err.message == "bad" and err.details == {"x": 1} and str(err) == "bad"
    assert DomainError("bad").details is None


# --- bracket math -----------------------------------------------------------------------------

TICK = D("0.01")


def prices(action="BUY", open_price=D("10.00"), last_price=D("10.10"), entry_mode="auto", entry_value=None,
           target_type="auto", target_value=None, sl_type="auto", sl_value=None, tick=TICK, pcts=BracketPcts()):
    return bracket_prices(action, open_price, last_price, entry_mode, entry_value, target_type, target_value,
                          sl_type, sl_value, tick, pcts)


def test_auto_buy_idea_worked_example():
    # Entry = 10.00 x 1.04 = 10.40; target = 10.40 x 1.01 = 10.504 -> 10.50; SL = 10.40 x 0.99 = 10.296 -> 10.30
    result = prices()
    assert (result.entry, result.target, result.stoploss) == (D("10.40"), D("10.50"), D("10.30"))
    assert result.warnings == ()


def test_auto_sell_is_mirrored():
    # Entry = 10.00 x 0.96 = 9.60; target = 9.60 x 0.99 = 9.504 -> 9.50; SL = 9.60 x 1.01 = 9.696 -> 9.70
    result = prices(action="SELL")
    assert (result.entry, result.target, result.stoploss) == (D("9.60"), D("9.50"), D("9.70"))


def test_auto_larger_price_and_tick():
    # RELIANCE-like: open 2450.00, tick 0.10 -> entry 2548.00, target 2573.48 -> 2573.50, SL 2522.52 -> 2522.50
    result = prices(open_price=D("2450"), tick=D("0.10"))
    assert (result.entry, result.target, result.stoploss) == (D("2548.00"), D("2573.50"), D("2522.50"))


@pytest.mark.parametrize("open_price", [None, D(0)])
def test_open_falls_back_to_last_price(open_price):
    assert prices(open_price=open_price, last_price=D("20.00")).entry == D("20.80")


def test_no_open_and_no_last_price_is_an_error():
    with pytest.raises(DomainError, match="no open or last price"):
        prices(open_price=None, last_price=None)


def test_manual_entry_needs_no_open():
    result = prices(open_price=None, last_price=None, entry_mode="manual", entry_value=D("270"))
    assert (result.entry, result.target, result.stoploss) == (D("270.00"), D("272.70"), D("267.30"))


def test_seed_readme_manual_example():
    result = prices(entry_mode="manual", entry_value=D("270"), target_type="manual", target_value=D("273"),
                    sl_type="manual", sl_value=D("267"))
    assert (result.entry, result.target, result.stoploss) == (D("270.00"), D("273.00"), D("267.00"))


def test_manual_values_off_tick_are_rounded_with_warning():
    result = prices(entry_mode="manual", entry_value=D("270.03"), target_type="manual", target_value=D("273.07"),
                    tick=D("0.05"))
    assert result.entry == D("270.05") and result.target == D("273.05")
    assert result.warnings == (
        "entry_value 270.03 is not a multiple of the tick size 0.05; rounded to 270.05",
        "target_value 273.07 is not a multiple of the tick size 0.05; rounded to 273.05",
    )


def test_percent_modes_use_the_given_percentages():
    result = prices(entry_mode="PERCENT", entry_value=D("2"), target_type="percent", target_value=D("5"),
                    sl_type="percent", sl_value=D("3"))
    # entry 10.20, target 10.71, SL 9.894 -> 9.89
    assert (result.entry, result.target, result.stoploss) == (D("10.20"), D("10.71"), D("9.89"))


def test_configured_pcts_drive_auto():
    result = prices(pcts=BracketPcts(entry=D("1"), target=D("2"), sl=D("0.5")))
    assert (result.entry, result.target, result.stoploss) == (D("10.10"), D("10.30"), D("10.05"))


@pytest.mark.parametrize(("kw", "match"), [
    ({"entry_mode": "percent"}, "entry_value is required"),
    ({"target_type": "manual"}, "target_value is required"),
    ({"sl_type": "percent", "sl_value": D("-1")}, "must not be negative"),
    ({"sl_type": "manual", "sl_value": D("0")}, "positive price"),
    ({"entry_mode": "fixed"}, "auto, manual, percent"),
    ({"action": "HOLD"}, "BUY or SELL"),
])
def test_bracket_input_errors(kw, match):
    with pytest.raises(DomainError, match=match):
        prices(**kw)


def test_wrong_sides_are_refused_with_the_three_prices():
    with pytest.raises(DomainError) as info:
        prices(entry_mode="manual", entry_value=D("270"), sl_type="manual", sl_value=D("275"))
    message = info.value.message
    assert "stoploss < entry < target" in message
    assert "entry 270.00" in message and "target 272.70" in message and "stoploss 275.00" in message
    assert info.value.details == {"entry": "270.00", "target": "272.70", "stoploss": "275.00"}


def test_sell_wrong_sides_are_refused():
    with pytest.raises(DomainError, match="target < entry < stoploss"):
        prices(action="SELL", target_type="manual", target_value=D("9.80"))


def test_rounding_can_collapse_the_bracket():
    # Entry 1.04, 1% of it is less than half a tick of 0.05: target and SL both round onto the entry.
    with pytest.raises(DomainError, match="invalid bracket"):
        prices(open_price=D("1.00"), tick=D("0.05"))


def test_sell_entry_percent_of_100_is_not_positive():
    with pytest.raises(DomainError, match="positive"):
        prices(action="SELL", entry_mode="percent", entry_value=D("100"))


TICKS = st.sampled_from([D("0.01"), D("0.05"), D("0.10"), D("0.25"), D("1"), D("0.0025")])
MONEY = st.decimals(min_value=D("0.05"), max_value=D("100000"), places=2, allow_nan=False, allow_infinity=False)
PCT = st.decimals(min_value=D("0"), max_value=D("50"), places=2, allow_nan=False, allow_infinity=False)
MAYBE_OPEN = st.one_of(st.none(), st.just(D(0)), MONEY)


@given(action=st.sampled_from(["BUY", "SELL"]), open_price=MAYBE_OPEN, last_price=MONEY, tick=TICKS,
       entry=PCT, target=PCT, sl=PCT)
def test_bracket_is_ordered_on_tick_or_refused(action, open_price, last_price, tick, entry, target, sl):
    try:
        result = prices(action=action, open_price=open_price, last_price=last_price, tick=tick,
                        pcts=BracketPcts(entry=entry, target=target, sl=sl))
    except DomainError:
        return
    for price in (result.entry, result.target, result.stoploss):
        assert price > 0 and on_tick(price, tick)
    if action == "BUY":
        assert result.stoploss < result.entry < result.target
    else:
        assert result.target < result.entry < result.stoploss


@given(action=st.sampled_from(["BUY", "SELL"]), tick=TICKS, entry=MONEY, target=MONEY, sl=MONEY)
def test_manual_bracket_is_ordered_on_tick_or_refused(action, tick, entry, target, sl):
    try:
        result = prices(action=action, entry_mode="manual", entry_value=entry, target_type="manual",
                        target_value=target, sl_type="manual", sl_value=sl, tick=tick)
    except DomainError:
        return
    assert all(on_tick(p, tick) for p in (result.entry, result.target, result.stoploss))
    if action == "BUY":
        assert result.stoploss < result.entry < result.target
    else:
        assert result.target < result.entry < result.stoploss


@given(open_price=MONEY, tick=TICKS)
def test_wide_enough_auto_brackets_are_never_refused(open_price, tick):
    # With the default 4/1/1 the bracket only collapses when 1% of the entry is under half a tick.
    assume(open_price * D("0.0104") > tick)
    for action in ("BUY", "SELL"):
        prices(action=action, open_price=open_price, tick=tick)


# --- plan_bracket -----------------------------------------------------------------------------

def test_plan_bracket_idea_buy_breakout():
    plan = plan_bracket(bracket(), IDEA, open_price=D("10.00"), last_price=D("10.10"))
    assert plan.request == GttRequest(
        type=MULTIPLE, instrument_key=IDEA.instrument_key, transaction_type="BUY", product="I", quantity=10,
        rules=(GttRule(ENTRY, ABOVE, D("10.40")), GttRule(TARGET, IMMEDIATE, D("10.50")),
               GttRule(STOPLOSS, IMMEDIATE, D("10.30"))),
    )
    assert plan.prices == {"entry": D("10.40"), "target": D("10.50"), "stoploss": D("10.30")}
    assert [(leg["role"], leg["action"], leg["trigger_type"], leg["price"]) for leg in plan.legs] == [
        ("entry", "BUY", ABOVE, D("10.40")), ("target", "SELL", IMMEDIATE, D("10.50")),
        ("stoploss", "SELL", IMMEDIATE, D("10.30")),
    ]
    assert {leg["product"] for leg in plan.legs} == {"MIS"}
    assert plan.warnings == ()


def test_plan_bracket_entry_below_last_price_triggers_below():
    # Price has already run past the computed entry: the entry is below the last price now.
    plan = plan_bracket(bracket(), IDEA, open_price=D("10.00"), last_price=D("10.60"))
    assert plan.request.rules[0].trigger_type == BELOW


def test_plan_bracket_entry_equal_to_last_price_is_above():
    plan = plan_bracket(bracket(), IDEA, open_price=D("10.00"), last_price=D("10.40"))
    assert plan.request.rules[0].trigger_type == ABOVE


def test_plan_bracket_sell():
    plan = plan_bracket(bracket(action="SELL", product="CNC"), IDEA, open_price=D("10.00"), last_price=D("10.00"))
    assert plan.request.transaction_type == "SELL" and plan.request.product == "D"
    assert plan.request.rules[0] == GttRule(ENTRY, BELOW, D("9.60"))
    assert [leg["action"] for leg in plan.legs] == ["SELL", "BUY", "BUY"]


def test_plan_bracket_needs_last_price():
    with pytest.raises(DomainError, match="no last price is available for IDEA on NSE"):
        plan_bracket(bracket(entry_mode="manual", entry_value=D("10")), IDEA, open_price=None, last_price=None)


def test_plan_bracket_trailing_gap_rounded_and_sent():
    plan = plan_bracket(bracket(trailing_gap=D("0.053")), IDEA, open_price=D("10.00"), last_price=D("10.10"))
    assert plan.request.rules[2].trailing_gap == D("0.05")
    assert plan.legs[2]["trailing_gap"] == D("0.05")
    assert plan.warnings == ("trailing_gap 0.053 is not a multiple of the tick size 0.01; rounded to 0.05",)


@pytest.mark.parametrize("gap", [D("0"), D("0.004"), D("-1")])
def test_plan_bracket_trailing_gap_must_be_positive(gap):
    with pytest.raises(DomainError, match="trailing_gap"):
        plan_bracket(bracket(trailing_gap=gap), IDEA, open_price=D("10.00"), last_price=D("10.10"))


def test_plan_bracket_wide_trailing_gap_warns():
    plan = plan_bracket(bracket(trailing_gap=D("0.20")), IDEA, open_price=D("10.00"), last_price=D("10.10"))
    assert plan.warnings == ("trailing_gap 0.20 is not smaller than the entry-stoploss distance 0.10",)


def test_plan_bracket_market_protection_on_every_rule_and_ignored_fields_warned():
    plan = plan_bracket(bracket(pricetype="MARKET", price=D("10"), triggerprice_tg=D("11")), IDEA,
                        open_price=D("10.00"), last_price=D("10.10"))
    assert {rule.market_protection for rule in plan.request.rules} == {5}
    assert any("no MARKET child" in w for w in plan.warnings)
    assert any(w.startswith("price is ignored") for w in plan.warnings)
    assert any(w.startswith("triggerprice_tg is ignored") for w in plan.warnings)


def test_plan_bracket_lot_size():
    with pytest.raises(DomainError, match="lot size 75"):
        plan_bracket(bracket(product="NRML", quantity=10), NIFTY_OPT, open_price=D("100"), last_price=D("100"))


def test_plan_bracket_manual_off_tick_warnings_are_passed_on():
    plan = plan_bracket(bracket(entry_mode="manual", entry_value=D("10.404")), IDEA, None, D("10.10"))
    assert plan.prices["entry"] == D("10.40")
    assert plan.warnings == ("entry_value 10.404 is not a multiple of the tick size 0.01; rounded to 10.40",)


# --- modify -----------------------------------------------------------------------------------

EXISTING = {"instrument_key": IDEA.instrument_key, "action": "BUY", "product": "CNC", "trigger_type": "single"}


def test_modify_same_identity_is_allowed():
    check_modify_allowed(EXISTING, single(triggerprice_tg=D("11"), quantity=3), IDEA)
    # NRML and CNC are both Upstox D: a relabel is not a broker-side change.
    check_modify_allowed(EXISTING, single(product="NRML"), IDEA)
    # A stored row (attributes) or Upstox's own codes work too.
    row = type("Row", (), {"instrument_key": IDEA.instrument_key, "action": "SELL", "product": "I",
                           "trigger_type": "MULTIPLE"})()
    check_modify_allowed(row, bracket(action="SELL", product="MIS"), IDEA)


@pytest.mark.parametrize(("intent", "instrument", "changed"), [
    (single(action="SELL"), IDEA, ["action"]),
    (single(product="MIS"), IDEA, ["product"]),
    (bracket(product="CNC"), IDEA, ["trigger_type"]),
    (single(), NIFTY_OPT, ["instrument"]),
    (single(action="SELL", product="MTF"), NIFTY_OPT, ["instrument", "action", "product"]),
])
def test_modify_identity_changes_are_refused(intent, instrument, changed):
    with pytest.raises(DomainError, match="cannot change: cancel and place again") as info:
        check_modify_allowed(EXISTING, intent, instrument)
    assert info.value.details == {"changed": changed}


# --- status and order book --------------------------------------------------------------------

def rule(strategy=ENTRY, status=SCHEDULED, trigger_type=ABOVE, price="100", side="BUY", **kw) -> RuleState:
    return RuleState(strategy=strategy, trigger_type=trigger_type, trigger_price=D(price), transaction_type=side,
                     status=status, **kw)


def gtt(*rules, type_=SINGLE, **kw) -> BrokerGtt:
    base = dict(gtt_id="GTT-C25090600141213", type=type_, instrument_key="NSE_EQ|INE669E01016", segment="NSE_EQ",
                trading_symbol="IDEA", quantity=1, product="D", rules=tuple(rules))
    base.update(kw)
    return BrokerGtt(**base)


@pytest.mark.parametrize("status", [SCHEDULED, PENDING, INACTIVE])
def test_live_statuses_are_active(status):
    assert gtt_status(gtt(rule(status=status))) == "active"
    assert gtt(rule(status=status)).can_fire


@pytest.mark.parametrize(("statuses", "expected"), [
    ((TRIGGERED,), "triggered"),
    ((OPEN,), "triggered"),  # fired: its LIMIT order rests at the exchange; nothing of the GTT can fire again
    ((COMPLETED,), "triggered"),
    ((OPEN, INACTIVE, INACTIVE), "active"),  # a bracket's IMMEDIATE entry rests: its exits wait for it
    ((CANCELLED,), "cancelled"),
    ((EXPIRED,), "expired"),
    ((FAILED,), "rejected"),
    ((COMPLETED, COMPLETED, CANCELLED), "triggered"),  # bracket: target hit, SL cancelled
    ((COMPLETED, FAILED, CANCELLED), "triggered"),  # fired; the failed exit shows on its leg
    ((EXPIRED, CANCELLED, CANCELLED), "expired"),  # the entry's fate, not its exits'
    ((FAILED, CANCELLED, CANCELLED), "rejected"),
    ((COMPLETED, SCHEDULED, SCHEDULED), "active"),  # in the trade, exits still live
    ((), "cancelled"),
])
def test_gtt_status(statuses, expected):
    strategies = (ENTRY, TARGET, STOPLOSS)
    subject = gtt(*(rule(strategy=s, status=st_) for s, st_ in zip(strategies, statuses)))
    assert gtt_status(subject) == expected
    assert subject.can_fire == (expected == "active")


def test_exit_status_decides_when_there_is_no_entry_rule():
    assert gtt_status(gtt(rule(strategy=TARGET, status=CANCELLED), rule(strategy=STOPLOSS, status=FAILED))) == "rejected"


def micros(epoch_us: int) -> datetime:
    return datetime.fromtimestamp(epoch_us / 1_000_000, timezone.utc)


def test_book_entry_for_upstox_documented_single():
    # The shape from Upstox's "Get GTT Order Details" sample.
    broker = gtt(rule(status=SCHEDULED, price="100", order_id=None, message=None),
                 created_at=micros(1749466010000000), expires_at=micros(1781029799000000))
    entry = book_entry(broker, symbol="IDEA", exchange="NSE", last_price=D("9.50"), is_derivative=False)
    assert entry == {
        "trigger_id": "GTT-C25090600141213",
        "trigger_type": "single",
        "status": "active",
        "message": None,
        "symbol": "IDEA",
        "exchange": "NSE",
        "trigger_prices": [D("100")],
        "last_price": D("9.50"),
        "legs": [{
            "action": "BUY", "quantity": 1, "price": D("100"), "pricetype": "LIMIT", "product": "CNC",
            "role": "entry", "trigger_type": ABOVE, "status": SCHEDULED, "order_id": None, "message": None,
        }],
        "created_at": "2025-06-09 16:16:50",
        "updated_at": "",
        "expires_at": "2026-06-09 23:59:59",  # a delivery GTT lives a year, to the end of an IST day
        "strategy": "",  # placed elsewhere: no strategy of a caller's
    }


def test_book_entry_unknown_last_price_is_zero_and_times_empty():
    entry = book_entry(gtt(rule()), symbol="IDEA", exchange="NSE", last_price=None, is_derivative=True)
    assert entry["last_price"] == D(0)
    assert entry["created_at"] == entry["updated_at"] == entry["expires_at"] == ""
    assert entry["legs"][0]["product"] == "NRML"


def test_book_entry_bracket_with_record():
    broker = gtt(
        rule(strategy=STOPLOSS, status=INACTIVE, trigger_type=IMMEDIATE, price="10.30", side="SELL",
             trailing_gap=D("0.05")),
        rule(strategy=ENTRY, status=SCHEDULED, trigger_type=ABOVE, price="10.40", side="BUY"),
        rule(strategy=TARGET, status=INACTIVE, trigger_type=IMMEDIATE, price="10.50", side="SELL"),
        type_=MULTIPLE, quantity=10, product="I",
    )
    recorded = {"trigger_id": "GTT-X", "trigger_type": "bracket", "product": "MIS",
                "legs": [{"role": "entry", "product": "MIS"}],
                "modified_at": datetime(2026, 1, 1, 5, 0, 0)}  # naive from SQLite: UTC
    entry = book_entry(broker, symbol="IDEA", exchange="NSE", last_price=D("10.10"), is_derivative=False,
                       recorded=recorded)
    assert entry["trigger_id"] == "GTT-X"
    assert entry["trigger_type"] == "bracket"
    assert entry["status"] == "active"
    assert entry["trigger_prices"] == [D("10.30"), D("10.40"), D("10.50")]
    assert [(leg["role"], leg["action"], leg["price"], leg["status"]) for leg in entry["legs"]] == [
        ("entry", "BUY", D("10.40"), SCHEDULED), ("target", "SELL", D("10.50"), INACTIVE),
        ("stoploss", "SELL", D("10.30"), INACTIVE),
    ]
    assert {leg["product"] for leg in entry["legs"]} == {"MIS"}
    assert {leg["quantity"] for leg in entry["legs"]} == {10}
    assert entry["updated_at"] == "2026-01-01 10:30:00"


def test_book_entry_multiple_placed_elsewhere_is_a_bracket():
    broker = gtt(rule(), rule(strategy=TARGET, trigger_type=IMMEDIATE, status=INACTIVE, side="SELL", price="110"),
                 type_=MULTIPLE)
    assert book_entry(broker, symbol="IDEA", exchange="NSE", last_price=None, is_derivative=False)["trigger_type"] \
        == "bracket"


def test_book_entry_rejected_carries_the_message():
    broker = gtt(rule(status=FAILED, message="Order price is beyond the circuit limit"))
    entry = book_entry(broker, symbol="IDEA", exchange="NSE", last_price=D("9.5"), is_derivative=False)
    assert entry["status"] == "rejected"
    assert entry["message"] == "Order price is beyond the circuit limit"
    assert entry["legs"][0]["message"] == "Order price is beyond the circuit limit"
    assert entry["legs"][0]["status"] == FAILED


def test_format_ist():
    assert format_ist(None) == ""
    assert format_ist(datetime(2026, 4, 29, 6, 48, 42, tzinfo=timezone.utc)) == "2026-04-29 12:18:42"
    assert format_ist(datetime(2026, 4, 29, 6, 48, 42)) == "2026-04-29 12:18:42"
