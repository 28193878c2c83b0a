"""Upstox master rows -> OpenAlgo symbols (domain.symbols), and the in-memory index over them."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openalgo_gtt.domain.symbols import (
    EXCHANGE_TO_SEGMENT,
    SEGMENT_TO_EXCHANGE,
    expiry_date,
    instrument_from_row,
    openalgo_symbol,
    tick_size_rupees,
)
from openalgo_gtt.store.instruments import InstrumentIndex, UnknownInstrument
from openalgo_gtt.store.instruments.index import _suggest

IST = timezone(timedelta(hours=5, minutes=30))


def _sample_rows() -> list[dict]:
    text = resources.files("openalgo_gtt").joinpath("data").joinpath("sample_instruments.json").read_text()
    return json.loads(text)


SAMPLE = _sample_rows()


def _epoch_ms(day: date, hour=15, minute=30, second=0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=IST).timestamp() * 1000)


def _option(**overrides) -> dict:
    row = {
        "weekly": False, "segment": "NSE_FO", "name": "NIFTY", "exchange": "NSE",
        "expiry": _epoch_ms(date(2026, 12, 29)), "instrument_type": "CE", "asset_symbol": "NIFTY",
        "underlying_symbol": "NIFTY", "instrument_key": "NSE_FO|52188", "lot_size": 75,
        "exchange_token": "52188", "tick_size": 5.0, "trading_symbol": "NIFTY 24500 CE 29 DEC 26",
        "strike_price": 24500.0,
    }
    row.update(overrides)
    return row


# --- the bundled sample -------------------------------------------------------------------------


def test_sample_has_the_promised_instruments():
    by_symbol = {(info.exchange, info.symbol): info for info in map(instrument_from_row, SAMPLE)}
    for symbol, isin in [("IDEA", "INE669E01016"), ("INFY", "INE009A01021"), ("RELIANCE", "INE002A01018"),
                         ("SBIN", "INE062A01020"), ("TCS", "INE467B01029")]:
        info = by_symbol[("NSE", symbol)]
        assert info.isin == isin and info.instrument_key == f"NSE_EQ|{isin}"
    assert by_symbol[("BSE", "RELIANCE")].instrument_key == "BSE_EQ|INE002A01018"
    for symbol in ("NIFTY", "BANKNIFTY", "FINNIFTY"):
        assert ("NSE_INDEX", symbol) in by_symbol
    assert ("BSE_INDEX", "SENSEX") in by_symbol
    for symbol in ("NIFTY29DEC26FUT", "NIFTY29DEC2624500CE", "NIFTY29DEC2624500PE"):
        info = by_symbol[("NFO", symbol)]
        assert info.lot_size == 75 and info.expiry == date(2026, 12, 29)
    assert by_symbol[("NFO", "NIFTY29DEC2624500CE")].tick_size == Decimal("0.05")
    assert by_symbol[("NFO", "IDEA29DEC267.5CE")].strike == Decimal("7.5")
    assert any(exchange == "NFO" and s.startswith("BANKNIFTY") and s.endswith("CE") for exchange, s in by_symbol)
    assert by_symbol[("MCX", "CRUDEOIL17DEC26FUT")].segment == "MCX_FO"


def test_every_sample_row_round_trips_through_the_index():
    infos = [instrument_from_row(row) for row in SAMPLE]
    assert None not in infos
    pairs = Counter((info.exchange, info.symbol) for info in infos)
    assert max(pairs.values()) == 1, "two sample rows share an OpenAlgo symbol"

    index = InstrumentIndex.from_instruments(infos)
    for row in SAMPLE:
        info = instrument_from_row(row)
        assert index.lookup(info.symbol, info.exchange).instrument_key == row["instrument_key"]
        assert index.lookup(info.symbol.lower(), info.exchange.lower()).instrument_key == row["instrument_key"]
        assert index.by_key(row["instrument_key"]) is index.lookup(info.symbol, info.exchange)


def test_sample_expiries_are_1530_ist():
    for row in SAMPLE:
        if "expiry" in row:
            moment = datetime.fromtimestamp(row["expiry"] / 1000, IST)
            assert (moment.hour, moment.minute) == (15, 30)


# --- formats ------------------------------------------------------------------------------------


def test_equity_keeps_the_exchange_symbol():
    row = {"segment": "NSE_EQ", "name": "VODAFONE IDEA LIMITED", "exchange": "NSE", "isin": "INE669E01016",
           "instrument_type": "EQ", "instrument_key": "NSE_EQ|INE669E01016", "lot_size": 1,
           "exchange_token": "14366", "tick_size": 1.0, "trading_symbol": "IDEA"}
    info = instrument_from_row(row)
    assert (info.symbol, info.exchange, info.segment) == ("IDEA", "NSE", "NSE_EQ")
    assert info.tick_size == Decimal("0.01") and info.lot_size == 1
    assert info.expiry is None and info.strike is None and not info.is_derivative


def test_future_symbol():
    row = _option(instrument_type="FUT", trading_symbol="NIFTY FUT 29 DEC 26", strike_price=0.0)
    assert openalgo_symbol(row) == "NIFTY29DEC26FUT"
    info = instrument_from_row(row)
    assert info.strike is None and info.instrument_type == "FUT" and info.is_derivative


@pytest.mark.parametrize("kind", ["CE", "PE"])
def test_option_symbol_has_no_trailing_zero(kind):
    row = _option(instrument_type=kind, trading_symbol=f"NIFTY 24500 {kind} 29 DEC 26")
    assert openalgo_symbol(row) == f"NIFTY29DEC2624500{kind}"
    assert instrument_from_row(row).strike == Decimal("24500")


def test_decimal_strike_is_kept():
    row = _option(underlying_symbol="IDEA", asset_symbol="IDEA", name="VODAFONE IDEA LIMITED",
                  strike_price=7.5, trading_symbol="IDEA 7.5 CE 29 DEC 26")
    assert openalgo_symbol(row) == "IDEA29DEC267.5CE"
    assert str(instrument_from_row(row).strike) == "7.5"


def test_notes_example_row_maps_with_its_ist_date():
    # Upstox's own example: expiry 1706207399000 is 25 Jan 2024 23:59:59 IST (18:29:59 UTC).
    row = json.loads(
        '{"weekly":false,"segment":"NSE_FO","name":"VODAFONE IDEA LIMITED","exchange":"NSE",'
        '"expiry":1706207399000,"instrument_type":"CE","underlying_symbol":"IDEA",'
        '"instrument_key":"NSE_FO|36708","lot_size":80000,"freeze_quantity":1600000.0,'
        '"exchange_token":"36708","minimum_lot":80000,"underlying_key":"NSE_EQ|INE669E01016",'
        '"tick_size":5.0,"underlying_type":"EQUITY","trading_symbol":"IDEA 22 CE 25 JAN 24","strike_price":22.0}'
    )
    info = instrument_from_row(row)
    assert info.symbol == "IDEA25JAN2422CE" and info.exchange == "NFO"
    assert info.expiry == date(2024, 1, 25) and info.lot_size == 80000


def test_expiry_is_the_date_in_india():
    # 00:30 IST on the 29th is still the 28th in UTC: the IST date must win.
    assert expiry_date(_epoch_ms(date(2026, 12, 29), hour=0, minute=30)) == date(2026, 12, 29)
    assert expiry_date(_epoch_ms(date(2026, 12, 29), hour=23, minute=59, second=59)) == date(2026, 12, 29)
    assert expiry_date(None) is None and expiry_date(0) is None and expiry_date("soon") is None


def test_structured_fields_beat_the_trading_symbol():
    # The trading symbol's date disagrees: the epoch (what Upstox keys on) wins.
    row = _option(trading_symbol="NIFTY 24500 CE 30 DEC 26")
    assert openalgo_symbol(row) == "NIFTY29DEC2624500CE"


@pytest.mark.parametrize("missing", ["underlying_symbol", "expiry", "strike_price", "instrument_type"])
def test_missing_structured_fields_come_from_the_trading_symbol(missing):
    row = _option()
    row.pop(missing)
    if missing == "underlying_symbol":
        row.pop("asset_symbol")
    assert openalgo_symbol(row) == "NIFTY29DEC2624500CE"


def test_one_word_name_is_the_last_resort_base():
    row = _option(trading_symbol="odd", underlying_symbol=None, asset_symbol=None, name="NIFTY")
    assert openalgo_symbol(row) == "NIFTY29DEC2624500CE"


@pytest.mark.parametrize(
    ("segment", "key_name", "trading_symbol", "expected"),
    [
        ("NSE_INDEX", "Nifty 50", "NIFTY 50", "NIFTY"),
        ("NSE_INDEX", "Nifty 50", "Nifty 50", "NIFTY"),
        ("NSE_INDEX", "Nifty 50", "NIFTY", "NIFTY"),
        ("NSE_INDEX", "Nifty Bank", "NIFTY BANK", "BANKNIFTY"),
        ("NSE_INDEX", "Nifty Bank", "BANKNIFTY", "BANKNIFTY"),
        ("NSE_INDEX", "Nifty Fin Service", "NIFTY FIN SERVICE", "FINNIFTY"),
        ("NSE_INDEX", "NIFTY MID SELECT", "NIFTY MID SELECT", "MIDCPNIFTY"),
        ("NSE_INDEX", "Nifty Next 50", "Nifty Next 50", "NIFTYNXT50"),
        ("NSE_INDEX", "India VIX", "INDIA VIX", "INDIAVIX"),
        ("NSE_INDEX", "Nifty Auto", "NIFTY AUTO", "NIFTYAUTO"),
        ("BSE_INDEX", "SENSEX", "SENSEX", "SENSEX"),
        ("BSE_INDEX", "BANKEX", "BANKEX", "BANKEX"),
        ("BSE_INDEX", "AUTO", "AUTO", "AUTO"),
        ("MCX_INDEX", "MCXCOMPDEX", "MCXCOMPDEX", "MCXCOMPDEX"),
    ],
)
def test_index_names(segment, key_name, trading_symbol, expected):
    row = {"segment": segment, "name": key_name, "exchange": segment[:3], "instrument_type": "INDEX",
           "instrument_key": f"{segment}|{key_name}", "exchange_token": "1", "trading_symbol": trading_symbol}
    info = instrument_from_row(row)
    assert (info.symbol, info.exchange) == (expected, segment)
    assert info.tick_size == Decimal("0.05") and not info.is_derivative


def test_segment_exchange_maps():
    assert SEGMENT_TO_EXCHANGE["NSE_EQ"] == "NSE" and SEGMENT_TO_EXCHANGE["NSE_FO"] == "NFO"
    assert SEGMENT_TO_EXCHANGE["NCD_FO"] == "CDS" and SEGMENT_TO_EXCHANGE["BCD_FO"] == "BCD"
    assert SEGMENT_TO_EXCHANGE["BSE_FO"] == "BFO" and SEGMENT_TO_EXCHANGE["MCX_FO"] == "MCX"
    assert all(EXCHANGE_TO_SEGMENT[exchange] == segment for segment, exchange in SEGMENT_TO_EXCHANGE.items())


# --- tick size ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(10.0, "0.1"), (5.0, "0.05"), (1.0, "0.01"), (5, "0.05"), ("5.0", "0.05"), (0.25, "0.0025"),
     (100.0, "1"), (1000.0, "10"), (None, "0.05"), (0, "0.05"), (0.0, "0.05"), (-5.0, "0.05"),
     ("abc", "0.05"), (float("nan"), "0.05"), ([5], "0.05")],
)
def test_tick_size_is_paise_to_rupees(raw, expected):
    tick = tick_size_rupees(raw)
    assert isinstance(tick, Decimal)
    assert str(tick) == expected  # normalised, never exponent form


def test_reliance_tick_is_ten_paise():
    assert tick_size_rupees(10.0) == Decimal("0.10")


# --- rows that cannot be mapped -----------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [
        None,
        [],
        "NSE_EQ|INE669E01016",
        {},
        {"segment": "NSE_COM", "instrument_key": "NSE_COM|1", "trading_symbol": "GOLD"},
        {"segment": "NSE_EQ", "trading_symbol": "IDEA"},  # no key
        {"segment": "NSE_EQ", "instrument_key": "NSE_EQ|X", "trading_symbol": ""},
        _option(expiry=None, trading_symbol="NIFTY WEIRD"),  # no expiry anywhere
        _option(strike_price=0.0, trading_symbol="NIFTY SOMETHING"),  # option without a strike
        _option(instrument_type=None, trading_symbol="NIFTY 24500 XX 29 DEC 26"),  # no type anywhere
        _option(instrument_type="SWAP", trading_symbol="NIFTY SWAP"),
        _option(underlying_symbol=None, asset_symbol=None, name="NIFTY 50 INDEX", trading_symbol="x"),
        _option(underlying_symbol=["NIFTY"]),  # wrong field type
        _option(lot_size="many"),
    ],
)
def test_unmappable_rows_give_none(row):
    assert instrument_from_row(row) is None


def test_openalgo_symbol_is_none_for_unmappable_rows():
    assert openalgo_symbol({"segment": "NSE_COM", "trading_symbol": "GOLD"}) is None
    assert openalgo_symbol(_option(expiry=None, trading_symbol="NIFTY WEIRD")) is None
    assert openalgo_symbol(_option(underlying_symbol=["NIFTY"])) is None


# --- InstrumentInfo -----------------------------------------------------------------------------


def test_odd_field_types_do_not_leak_into_the_info():
    row = {"segment": "NSE_EQ", "instrument_key": "NSE_EQ|INE669E01016", "trading_symbol": "IDEA",
           "instrument_type": 7, "name": ["VODAFONE"], "isin": 12, "lot_size": None, "tick_size": None}
    info = instrument_from_row(row)
    assert (info.instrument_type, info.name, info.isin, info.lot_size) == (None, None, None, 1)
    assert instrument_from_row(dict(row, trading_symbol=12345)) is None


def test_instrument_info_is_frozen_and_slotted():
    info = instrument_from_row(SAMPLE[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.symbol = "OTHER"
    assert not hasattr(info, "__dict__")


# --- property: structured fields and the trading symbol agree -----------------------------------

_bases = st.sampled_from(["NIFTY", "BANKNIFTY", "IDEA", "M&M", "BAJAJ-AUTO", "CRUDEOIL", "USDINR"])
_days = st.dates(min_value=date(2024, 1, 1), max_value=date(2040, 12, 31))
_strikes = st.decimals(min_value=Decimal("0.25"), max_value=Decimal("99999"), places=2)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


@given(base=_bases, day=_days, strike=_strikes, kind=st.sampled_from(["CE", "PE", "FUT"]))
def test_trading_symbol_fallback_agrees_with_structured_fields(base, day, strike, kind):
    label = f"{day.day:02d} {_MONTHS[day.month - 1]} {day.year % 100:02d}"
    strike_text = format(strike.normalize(), "f") if strike != strike.to_integral_value() else str(int(strike))
    trading_symbol = f"{base} FUT {label}" if kind == "FUT" else f"{base} {strike_text} {kind} {label}"
    row = _option(underlying_symbol=base, asset_symbol=base, instrument_type=kind, expiry=_epoch_ms(day),
                  strike_price=0.0 if kind == "FUT" else float(strike), trading_symbol=trading_symbol)
    structured = openalgo_symbol(row)
    expected = f"{base}{day.day:02d}{_MONTHS[day.month - 1]}{day.year % 100:02d}"
    assert structured == (expected + "FUT" if kind == "FUT" else f"{expected}{strike_text}{kind}")
    bare = {k: v for k, v in row.items()
            if k not in ("underlying_symbol", "asset_symbol", "expiry", "strike_price", "instrument_type")}
    assert openalgo_symbol(bare) == structured


# --- suggestions over big exchanges -------------------------------------------------------------


def test_suggestions_on_a_big_exchange_are_narrowed_by_prefix():
    names = sorted(f"NIFTY{d:02d}DEC26{s}{k}" for d in range(1, 29) for s in range(20000, 30000, 50)
                   for k in ("CE", "PE"))
    assert len(names) > 10_000
    found = _suggest(names, "NIFTY29DEC2624550CE".replace("29DEC", "28DEC"))
    assert "NIFTY28DEC2624550CE" in found and len(found) <= 5
    assert "NIFTY28DEC2624500CE" in _suggest(names, "NIFTY28DEC2624500C")
    assert _suggest(names, "ZZZZ") == []


def test_unknown_symbol_error_carries_suggestions():
    index = InstrumentIndex.from_instruments(instrument_from_row(row) for row in SAMPLE)
    with pytest.raises(UnknownInstrument) as caught:
        index.lookup("RELAINCE", "NSE")
    assert caught.value.suggestions[0] == "RELIANCE"
    assert (caught.value.symbol, caught.value.exchange) == ("RELAINCE", "NSE")
    assert "RELIANCE" in str(caught.value)
    with pytest.raises(UnknownInstrument) as caught:
        index.lookup("IDEA", "NASDAQ")
    assert caught.value.suggestions == []
