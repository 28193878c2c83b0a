"""TradingView's continuous futures (NIFTY1!, BANKNIFTY2!) -> the near / next month's future on
NFO, chosen from the master by expiry, never by building a name."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from openalgo_gtt.domain.symbols import InstrumentInfo, continuous_future, future_root, nth_future
from openalgo_gtt.store.instruments import InstrumentIndex, UnknownInstrument
from openalgo_gtt.store.instruments import index as index_module


def future(root: str, day: date, key: str, exchange: str = "NFO", segment: str = "NSE_FO") -> InstrumentInfo:
    code = f"{day.day:02d}{day.strftime('%b').upper()}{day.year % 100:02d}"
    return InstrumentInfo(key, segment, exchange, f"{root}{code}FUT", f"{root} FUT", root, "FUT", 75,
                          Decimal("0.05"), day, None, None)


NOV, DEC, JAN, FEB = date(2026, 11, 24), date(2026, 12, 29), date(2027, 1, 26), date(2027, 2, 23)
INFOS = [
    # Listed out of expiry order, and with keys whose order is not the expiry order.
    future("NIFTY", FEB, "NSE_FO|1"), future("NIFTY", DEC, "NSE_FO|9"), future("NIFTY", JAN, "NSE_FO|5"),
    future("NIFTY", NOV, "NSE_FO|7"),  # expired: no longer the near month
    future("BANKNIFTY", JAN, "NSE_FO|3"), future("BANKNIFTY", DEC, "NSE_FO|8"),
    future("NIFTYNXT50", DEC, "NSE_FO|2"),  # a root that starts like another
    InstrumentInfo("NSE_FO|6", "NSE_FO", "NFO", "NIFTY29DEC2624500CE", "NIFTY 24500 CE", "NIFTY", "CE", 75,
                   Decimal("0.05"), DEC, Decimal(24500), None),
    future("CRUDEOIL", DEC, "MCX_FO|1", exchange="MCX", segment="MCX_FO"),
]


@pytest.fixture
def index(monkeypatch):
    monkeypatch.setattr(index_module, "ist_today", lambda: date(2026, 12, 2))
    return InstrumentIndex.from_instruments(INFOS)


@pytest.mark.parametrize("ticker, exchange, contract", [
    ("NIFTY1!", "NSE", "NIFTY29DEC26FUT"),
    ("NIFTY2!", "NSE", "NIFTY26JAN27FUT"),
    ("nifty1!", "nse", "NIFTY29DEC26FUT"),
    ("BANKNIFTY1!", "NSE", "BANKNIFTY29DEC26FUT"),
    ("BANKNIFTY2!", "NSE", "BANKNIFTY26JAN27FUT"),
    ("NIFTYNXT501!", "NSE", "NIFTYNXT5029DEC26FUT"),
    ("NIFTY1!", "NFO", "NIFTY29DEC26FUT"),
    ("CRUDEOIL1!", "MCX", "CRUDEOIL29DEC26FUT"),
])
def test_a_continuous_ticker_is_the_future_of_that_month(index, ticker, exchange, contract):
    info = index.lookup(ticker, exchange)
    assert info.symbol == contract and info.instrument_type == "FUT"
    assert index.is_continuous(ticker, exchange)


def test_on_expiry_day_the_expiring_contract_is_still_the_near_month(monkeypatch, index):
    monkeypatch.setattr(index_module, "ist_today", lambda: DEC)
    assert index.lookup("NIFTY1!", "NSE").symbol == "NIFTY29DEC26FUT"
    monkeypatch.setattr(index_module, "ist_today", lambda: date(2026, 12, 30))
    assert index.lookup("NIFTY1!", "NSE").symbol == "NIFTY26JAN27FUT"
    assert index.lookup("NIFTY2!", "NSE").symbol == "NIFTY23FEB27FUT"


def test_a_month_the_master_lacks_is_unknown_with_the_reason(index):
    with pytest.raises(UnknownInstrument, match="no next month future of NIFTYNXT50 on NFO"):
        index.lookup("NIFTYNXT502!", "NSE")
    with pytest.raises(UnknownInstrument):
        index.lookup("RELIANCE1!", "NSE")


def test_ordinary_symbols_are_not_continuous(index):
    assert continuous_future("IDEA", "NSE") is None
    assert continuous_future("NIFTY3!", "NSE") is None
    assert continuous_future("NIFTY1!", "CDS") is None
    assert not index.is_continuous("NIFTY29DEC26FUT", "NFO")


def test_the_root_comes_from_the_contracts_own_expiry():
    assert future_root(future("NIFTY", DEC, "k")) == "NIFTY"
    assert future_root(INFOS[7]) is None  # an option
    assert nth_future([future("NIFTY", DEC, "a"), future("NIFTY", JAN, "b")], 3, date(2026, 12, 1)) is None
