"""The paper account's rules (domain/paper.py) and its settings: exact to the paisa."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from openalgo_gtt.config import ConfigError, load_settings
from openalgo_gtt.domain.paper import (
    Commitment, InsufficientFunds, PaperTrade, Position, account, apply_trade, check_funds, margin_rate,
    openalgo_product, order_from_fire, trigger_margin,
)

D = Decimal
AT = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)


def trade(side: str, quantity: int, price: str) -> PaperTrade:
    return PaperTrade("o", "K", "IDEA", "NSE", "D", side, quantity, D(price), AT)


def test_average_cost_realises_exactly_through_adds_partial_exits_and_a_reversal():
    position = Position("K", "D", "IDEA", "NSE")
    steps = [("BUY", 10, "100"), ("BUY", 5, "106"), ("SELL", 6, "110"), ("SELL", 12, "90"), ("BUY", 3, "95")]
    seen = []
    for side, quantity, price in steps:
        position = apply_trade(position, trade(side, quantity, price))
        seen.append((position.quantity, position.average_price, position.realised))
    assert seen == [(10, D(100), 0), (15, D(102), 0), (9, D(102), D(48)), (-3, D(90), D(-60)), (0, 0, D(-75))]


def test_a_third_of_a_paisa_never_leaks_into_realised_pnl():
    position = apply_trade(Position("K", "D"), trade("BUY", 3, "10.01"))  # cost 30.03, average 10.01
    position = apply_trade(position, trade("BUY", 3, "10.02"))  # 60.09 for 6: average 10.015
    for _ in range(6):
        position = apply_trade(position, trade("SELL", 1, "10.10"))
    assert (position.quantity, position.cost) == (0, 0)
    assert position.realised == D("60.60") - D("60.09")  # 0.51 exactly, however it was split


def test_unrealised_pnl_is_marked_to_the_last_price_for_longs_and_shorts():
    long = apply_trade(Position("K", "D"), trade("BUY", 10, "9.55"))
    short = apply_trade(Position("K", "I"), trade("SELL", 10, "9.55"))
    assert (long.unrealised(D("9.75")), short.unrealised(D("9.75"))) == (D("2.00"), D("-2.00"))
    assert long.unrealised(None) == 0


@pytest.mark.parametrize("product, exchange, symbol, side, rate", [
    ("CNC", "NSE", "IDEA", "BUY", "1"), ("CNC", "BSE", "IDEA", "SELL", "0"),
    ("MTF", "NSE", "IDEA", "BUY", "0.25"), ("MIS", "NSE", "IDEA", "SELL", "0.20"),
    ("NRML", "NFO", "NIFTY26DEC24FUT", "SELL", "0.20"), ("NRML", "NFO", "NIFTY15FEB2419650CE", "BUY", "1"),
    ("NRML", "MCX", "CRUDEOIL19DEC24FUT", "BUY", "0.20"), ("CNC", "NFO", "NIFTY26DEC24FUT", "SELL", "1"),
])
def test_the_margin_table(product, exchange, symbol, side, rate):
    assert margin_rate(product, exchange, symbol, side) == D(rate)


def test_an_oco_blocks_its_larger_leg_a_bracket_its_entry():
    legs = ({"role": "stoploss", "action": "BUY", "quantity": 10, "price": "90"},
            {"role": "target", "action": "BUY", "quantity": 10, "price": "110"})
    assert trigger_margin("two-leg", "CNC", "NSE", "X", legs) == D("1100")
    bracket = ({"role": "entry", "action": "BUY", "quantity": 10, "price": "100"},
               {"role": "target", "action": "SELL", "quantity": 10, "price": "110"},
               {"role": "stoploss", "action": "SELL", "quantity": 10, "price": "95"})
    assert trigger_margin("bracket", "MIS", "NSE", "X", bracket) == D("200")  # 20% of 1000


def test_funds_refuse_what_the_account_cannot_fund_naming_both_amounts():
    held = apply_trade(Position("K", "D", "IDEA", "NSE"), trade("BUY", 100, "50"))  # 5000 held (CNC)
    live = Commitment("single", "CNC", "NSE", "IDEA", ({"action": "BUY", "quantity": 10, "price": "300"},))
    waiting = order_from_fire(order_id="1", gtt_id="G", strategy="ENTRY", instrument_key="K", symbol="IDEA",
                              exchange="NSE", product="D", side="BUY", quantity=10, trigger_price=D("100"),
                              market=False, at=AT)
    funds = account(D("10000"), [held], [waiting], [live], {"K": D("51")})
    assert (funds.used, funds.available, funds.unrealised) == (D("9000"), D("1000"), D("100"))
    check_funds(D("1000"), funds)
    with pytest.raises(InsufficientFunds) as refused:
        check_funds(D("1000.01"), funds)
    assert refused.value.message == "insufficient funds: needs ₹1000.01, available ₹1000.00"


def test_products_as_openalgo_names_them():
    assert [openalgo_product(c, e) for c, e in (("D", "NSE"), ("D", "NFO"), ("I", "NSE"), ("MTF", "BSE"))] == [
        "CNC", "NRML", "MIS", "MTF"]


def test_paper_settings_and_their_errors(tmp_path):
    settings = load_settings({}, tmp_path)
    assert (settings.sandbox_capital, settings.sandbox_prices) == (D("1000000"), "manual")
    settings = load_settings({"SANDBOX_CAPITAL": "2,50,000.50", "SANDBOX_PRICES": "Upstox"}, tmp_path)
    assert (settings.sandbox_capital, settings.sandbox_prices) == (D("250000.50"), "upstox")
    for name, raw, says in (("SANDBOX_CAPITAL", "-5", "positive"), ("SANDBOX_CAPITAL", "1.001", "paise"),
                            ("SANDBOX_CAPITAL", "lots", "rupees"), ("SANDBOX_PRICES", "yahoo", "manual, upstox or kite"),
                            ("SANDBOX_PRICES", "kite", "set KITE_API_KEY")):
        with pytest.raises(ConfigError, match=says):
            load_settings({name: raw}, tmp_path)
    settings = load_settings({"SANDBOX_PRICES": "kite", "KITE_API_KEY": "k", "KITE_ACCESS_TOKEN": "t"}, tmp_path)
    assert (settings.broker, settings.sandbox_prices) == ("sandbox", "kite")
