"""Loading Kite's instruments CSV from a file: atomic, a report per segment, and a file that is
not Kite's CSV leaves the previous set in place."""
from __future__ import annotations

import gzip
from decimal import Decimal

import pytest

from openalgo_gtt.store.instruments import InstrumentIndex, InstrumentLoadError, load_master
from tests.fakes.fake_kite import FakeKite


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "instruments.csv.gz"  # gzip, told apart by content as for Upstox's master
    path.write_bytes(gzip.compress(FakeKite()._csv("")))
    return path


def test_load_from_a_csv_path(db_engine, csv_file):
    report = load_master(db_engine, csv_file, broker="kite")
    assert report.per_segment == {"MCX_FO": 1, "NSE_EQ": 2, "NSE_FO": 3, "NSE_INDEX": 1}
    index = InstrumentIndex.from_engine(db_engine)
    weekly = index.lookup("NIFTY22DEC2624000CE", "NFO")
    assert (weekly.instrument_key, weekly.lot_size, weekly.tick_size) == ("NFO:NIFTY26D2224000CE", 75, Decimal("0.05"))
    assert index.lookup("CRUDEOIL17DEC26FUT", "MCX").trading_symbol == "CRUDEOIL26DECFUT"


def test_a_file_that_is_not_kites_csv_leaves_the_previous_set(db_engine, csv_file, tmp_path):
    load_master(db_engine, csv_file, broker="kite")
    wrong = tmp_path / "upstox.json"
    wrong.write_text('[{"instrument_key": "NSE_EQ|INE669E01016"}]')
    with pytest.raises(InstrumentLoadError, match="not Kite's CSV"):
        load_master(db_engine, wrong, broker="kite")
    assert InstrumentIndex.from_engine(db_engine).lookup("INFY", "NSE").instrument_key == "NSE:INFY"


def test_another_brokers_master_is_refused_with_what_to_do(db_engine, csv_file):
    from openalgo_gtt.store.instruments import UnknownInstrument

    load_master(db_engine, None)  # the bundled sample: Upstox's master
    on_kite = InstrumentIndex(db_engine, master="kite")
    with pytest.raises(UnknownInstrument, match="the loaded instrument master is Upstox's and this gateway drives "
                                                "Kite: load Kite's with python run.py instruments load"):
        on_kite.lookup("IDEA", "NSE")
    assert InstrumentIndex(db_engine, master="upstox").lookup("IDEA", "NSE").instrument_key.startswith("NSE_EQ|")
    load_master(db_engine, csv_file, broker="kite")
    on_kite.refresh()
    assert on_kite.lookup("INFY", "NSE").instrument_key == "NSE:INFY"
