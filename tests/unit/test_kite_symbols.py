"""Kite's instruments CSV rows -> OpenAlgo symbols, from the structured fields (issue 18's table)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from openalgo_gtt.domain.kite_symbols import kite_instrument_fields
from openalgo_gtt.domain.symbols import InstrumentInfo


def row(tradingsymbol, name, expiry, strike, kind, segment, exchange, tick="0.05", lot="1"):
    return {"instrument_token": "1", "exchange_token": "1", "tradingsymbol": tradingsymbol, "name": name,
            "last_price": "0", "expiry": expiry, "strike": strike, "tick_size": tick, "lot_size": lot,
            "instrument_type": kind, "segment": segment, "exchange": exchange}


@pytest.mark.parametrize("csv_row, openalgo, exchange", [
    (row("NIFTY26DEC24500CE", "NIFTY", "2026-12-29", "24500", "CE", "NFO-OPT", "NFO", lot="75"),
     "NIFTY29DEC2624500CE", "NFO"),  # monthly option
    (row("NIFTY26D2224000CE", "NIFTY", "2026-12-22", "24000", "CE", "NFO-OPT", "NFO", lot="75"),
     "NIFTY22DEC2624000CE", "NFO"),  # weekly option: Kite's own symbol is not parsed
    (row("NIFTY26DECFUT", "NIFTY", "2026-12-29", "0", "FUT", "NFO-FUT", "NFO", lot="75"), "NIFTY29DEC26FUT", "NFO"),
    (row("CRUDEOIL26DECFUT", "CRUDEOIL", "2026-12-17", "0", "FUT", "MCX-FUT", "MCX", tick="1", lot="100"),
     "CRUDEOIL17DEC26FUT", "MCX"),
    (row("INFY", "INFOSYS", "", "0", "EQ", "NSE", "NSE"), "INFY", "NSE"),
    (row("USDINR26DEC83.25PE", "USDINR", "2026-12-29", "83.25", "PE", "CDS-OPT", "CDS", tick="0.0025"),
     "USDINR29DEC2683.25PE", "CDS"),
])
def test_openalgo_symbols_from_structured_fields(csv_row, openalgo, exchange):
    info = InstrumentInfo(*kite_instrument_fields(csv_row))
    assert (info.symbol, info.exchange) == (openalgo, exchange)
    assert info.instrument_key == f"{csv_row['exchange']}:{csv_row['tradingsymbol']}"
    assert info.trading_symbol == csv_row["tradingsymbol"]
    assert info.lot_size == int(csv_row["lot_size"]) and info.tick_size == Decimal(csv_row["tick_size"])


def test_index_is_filed_as_an_index_and_has_no_tick():
    info = InstrumentInfo(*kite_instrument_fields(row("NIFTY 50", "NIFTY 50", "", "0", "EQ", "INDICES", "NSE", tick="0")))
    assert (info.symbol, info.exchange, info.segment) == ("NIFTY", "NSE_INDEX", "NSE_INDEX")


def test_option_expiry_and_strike_kept():
    info = InstrumentInfo(*kite_instrument_fields(row("NIFTY26D2224000CE", "NIFTY", "2026-12-22", "24000.0", "CE",
                                                      "NFO-OPT", "NFO", lot="75")))
    assert info.expiry == date(2026, 12, 22) and info.strike == Decimal(24000) and info.is_derivative


@pytest.mark.parametrize("bad", [
    row("X", "X", "", "0", "EQ", "NSE", "NYSE"),  # unknown exchange
    row("NIFTYXCE", "NIFTY", "", "24000", "CE", "NFO-OPT", "NFO"),  # no expiry
    row("NIFTYXCE", "NIFTY", "2026-12-22", "0", "CE", "NFO-OPT", "NFO"),  # no strike
    row("", "", "", "", "", "", ""),
])
def test_rows_that_cannot_be_addressed_are_skipped(bad):
    assert kite_instrument_fields(bad) is None
