"""Loading the instrument master into the store, and the index built from it (SQLite and PostgreSQL)."""
from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from datetime import date
from decimal import Decimal
from importlib import resources

import pytest
import requests
import responses
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import OperationalError

from openalgo_gtt.store.instruments import load as store_load
from openalgo_gtt.store.instruments import (
    SAMPLE_SOURCE,
    InstrumentIndex,
    InstrumentLoadError,
    UnknownInstrument,
    ensure_instruments,
    load_master,
)
from openalgo_gtt.store.tables import INSTRUMENT_LOADS, INSTRUMENTS

MASTER_URL = "https://assets.example.test/market-quote/instruments/exchange/complete.json.gz"


def _sample() -> list[dict]:
    text = resources.files("openalgo_gtt").joinpath("data").joinpath("sample_instruments.json").read_text()
    return json.loads(text)


SAMPLE = _sample()


def _write(path, rows, *, gz=False):
    data = json.dumps(rows).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _keys(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(INSTRUMENTS.c.instrument_key)).scalars())


def _indexes(engine) -> set[str]:
    return {ix["name"] for ix in inspect(engine).get_indexes("instruments")}


@pytest.fixture
def extra_index(db_engine):
    """An index someone added to the table by hand: a load must leave it as it found it."""
    with db_engine.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX ix_by_hand ON instruments (exchange, symbol)")
    assert _indexes(db_engine) == {"ix_by_hand"}


def _load_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(INSTRUMENT_LOADS)).scalar()


def _many(copies: int) -> list[dict]:
    """The sample `copies` times over, each copy under keys of its own: long enough for the
    SQLite load's many-row statements and a part-filled last one."""
    return [{**row, "instrument_key": f"{row['instrument_key']}#{n}"} for n in range(copies) for row in SAMPLE]


def _small_set() -> list[dict]:
    """A different, smaller master: only the NSE equities."""
    return [row for row in SAMPLE if row["segment"] == "NSE_EQ"]


# --- loading ------------------------------------------------------------------------------------


def test_load_plain_json(db_engine, tmp_path):
    report = load_master(db_engine, _write(tmp_path / "master.json", SAMPLE))
    assert report.rows_loaded == len(SAMPLE) and report.rows_skipped == 0
    assert report.per_segment == dict(Counter(row["segment"] for row in SAMPLE))
    assert report.source.endswith("master.json") and report.seconds >= 0
    assert _keys(db_engine) == {row["instrument_key"] for row in SAMPLE}
    with db_engine.connect() as conn:
        load = conn.execute(select(INSTRUMENT_LOADS)).one()
    assert load.rows == len(SAMPLE) and load.id == report.generation


@pytest.mark.parametrize("name", ["complete.json.gz", "misleading.json"])
def test_gzip_is_detected_by_content_not_name(db_engine, tmp_path, name):
    report = load_master(db_engine, _write(tmp_path / name, SAMPLE, gz=True))
    assert report.rows_loaded == len(SAMPLE)


@pytest.mark.parametrize("gz", [True, False])
def test_a_local_file_loads_the_same_with_progress(db_engine, tmp_path, gz):
    report = load_master(db_engine, _write(tmp_path / "master.json", SAMPLE, gz=gz), progress=True)
    assert report.rows_loaded == len(SAMPLE) and _keys(db_engine) == {row["instrument_key"] for row in SAMPLE}


def test_plain_json_named_gz_loads(db_engine, tmp_path):
    assert load_master(db_engine, _write(tmp_path / "plain.json.gz", SAMPLE)).rows_loaded == len(SAMPLE)


def test_stored_values_come_back_exact(db_engine, tmp_path):
    load_master(db_engine, _write(tmp_path / "m.json", SAMPLE))
    index = InstrumentIndex.from_engine(db_engine)
    option = index.lookup("IDEA29DEC267.5CE", "NFO")
    assert option.strike == Decimal("7.5") and str(option.strike) == "7.5"
    assert option.tick_size == Decimal("0.05") and str(option.tick_size) == "0.05"
    assert option.expiry == date(2026, 12, 29) and option.lot_size == 71475 and option.is_derivative
    equity = index.lookup("RELIANCE", "NSE")
    assert str(equity.tick_size) == "0.1" and equity.isin == "INE002A01018" and equity.strike is None
    assert str(index.lookup("USDINR29DEC26FUT", "CDS").tick_size) == "0.0025"
    assert str(index.lookup("CRUDEOIL17DEC26FUT", "MCX").tick_size) == "1"


def test_the_load_stores_what_core_would(db_engine, tmp_path):
    """SQLite's load binds plain values through the DBAPI, many rows per statement; what it stores
    must be exactly what a Core insert() of the same records stores (types included)."""
    from openalgo_gtt.store.instruments.master import COLUMNS, to_records

    master = _many(7)  # 196 rows: two full 80-row statements and 36 rows after them
    assert load_master(db_engine, _write(tmp_path / "m.json", master)).rows_loaded == len(master)
    columns = ", ".join(f"{name}, typeof({name})" if db_engine.dialect.name == "sqlite" else name
                        for name in COLUMNS)
    query = f"SELECT {columns} FROM instruments ORDER BY instrument_key"
    with db_engine.connect() as conn:
        loaded = conn.exec_driver_sql(query).all()
    assert len(loaded) == len(master)
    records, _, _ = to_records(master)
    with db_engine.begin() as conn:
        conn.execute(INSTRUMENTS.delete())
        conn.execute(INSTRUMENTS.insert(), [dict(zip(COLUMNS, record)) for record in records])
    with db_engine.connect() as conn:
        assert conn.exec_driver_sql(query).all() == loaded


def test_a_load_leaves_a_pooled_sqlite_connection_as_it_found_it(db_engine, tmp_path):
    """The SQLite load widens its connection's page cache for itself; the server's pooled
    connection that ran it must get its own size back."""
    def cache_size():
        with db_engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA cache_size").scalar()

    if db_engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's load changes no session setting")
    before = cache_size()
    load_master(db_engine, _write(tmp_path / "m.json", _many(4)))
    assert cache_size() == before


def test_unmappable_and_duplicate_rows_are_skipped_and_counted(db_engine, tmp_path):
    junk = [
        {"segment": "NSE_COM", "instrument_key": "NSE_COM|1", "trading_symbol": "GOLD"},
        {"segment": "NSE_FO", "instrument_key": "NSE_FO|9", "trading_symbol": "NOT A CONTRACT"},
        "not even an object",
        dict(SAMPLE[0]),  # same instrument_key again
        dict(SAMPLE[1], instrument_key="NSE_EQ|" + "X" * 80),  # would not fit the key column
    ]
    report = load_master(db_engine, _write(tmp_path / "m.json", SAMPLE + junk))
    assert report.rows_loaded == len(SAMPLE) and report.rows_skipped == len(junk)


def test_long_name_is_shortened_not_dropped(db_engine, tmp_path):
    rows = [dict(SAMPLE[0], name="N" * 400)]
    assert load_master(db_engine, _write(tmp_path / "m.json", rows)).rows_loaded == 1
    assert len(InstrumentIndex.from_engine(db_engine).by_key(SAMPLE[0]["instrument_key"]).name) == 256


def test_bundled_sample(db_engine):
    report = load_master(db_engine, None)
    assert report.source == SAMPLE_SOURCE and report.rows_loaded == len(SAMPLE)


def test_reload_replaces_the_whole_set(db_engine, tmp_path, extra_index):
    indexes_before = _indexes(db_engine)
    first = load_master(db_engine, _write(tmp_path / "a.json", SAMPLE))
    second = load_master(db_engine, _write(tmp_path / "b.json", _small_set()))
    assert second.generation > first.generation
    assert _keys(db_engine) == {row["instrument_key"] for row in _small_set()}
    assert _load_count(db_engine) == 2
    # The table's indexes survive a load as they were.
    assert _indexes(db_engine) == indexes_before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"segment": "NSE_EQ", ', "not valid JSON"),
        (b'{"segment": "NSE_EQ"}', "expected an array"),
        (gzip.compress(json.dumps(SAMPLE).encode())[:200], "cannot read"),  # truncated download
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (json.dumps([{"segment": "NSE_COM"}]).encode(), "no usable rows"),
    ],
)
def test_failed_load_leaves_the_previous_set(db_engine, tmp_path, content, message):
    load_master(db_engine, _write(tmp_path / "good.json", SAMPLE))
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(InstrumentLoadError, match=message):
        load_master(db_engine, bad)
    assert _keys(db_engine) == {row["instrument_key"] for row in SAMPLE}
    assert _load_count(db_engine) == 1


def test_missing_file_is_a_load_error(db_engine, tmp_path):
    with pytest.raises(InstrumentLoadError, match="cannot read"):
        load_master(db_engine, tmp_path / "nope.json.gz")


def test_rows_the_database_refuses_leave_the_previous_set(db_engine, tmp_path, monkeypatch):
    """A write the database itself refuses (here a key twice, which the reader would never let
    through) fails the load as a load error, with the previous set in place, on either database."""
    load_master(db_engine, _write(tmp_path / "good.json", SAMPLE))
    real_records = store_load.MASTERS["upstox"][1]

    def with_a_key_twice(rows):
        records, skipped, per_segment = real_records(rows)
        return records + records[:1], skipped, per_segment

    monkeypatch.setitem(store_load.MASTERS, "upstox", (store_load.MASTERS["upstox"][0], with_a_key_twice))
    with pytest.raises(InstrumentLoadError):
        load_master(db_engine, _write(tmp_path / "many.json", _many(3)))
    assert _keys(db_engine) == {row["instrument_key"] for row in SAMPLE}
    assert _load_count(db_engine) == 1


def test_failure_while_writing_rolls_everything_back(db_engine, tmp_path, monkeypatch, extra_index):
    load_master(db_engine, _write(tmp_path / "good.json", SAMPLE))
    indexes_before = _indexes(db_engine)
    real_insert = store_load._insert_records

    def insert_then_fail(conn, records):
        real_insert(conn, records)  # the old rows are deleted and new ones written ...
        raise OperationalError("INSERT", {}, Exception("disk full"))  # ... then the write fails

    monkeypatch.setattr(store_load, "_insert_records", insert_then_fail)
    with pytest.raises(InstrumentLoadError, match="disk full"):
        load_master(db_engine, _write(tmp_path / "small.json", _small_set()))
    assert _keys(db_engine) == {row["instrument_key"] for row in SAMPLE}
    assert _load_count(db_engine) == 1
    assert _indexes(db_engine) == indexes_before


def test_ensure_instruments_loads_the_sample_only_when_empty(db_engine, tmp_path):
    report = ensure_instruments(db_engine)
    assert report is not None and report.source == SAMPLE_SOURCE and report.rows_loaded == len(SAMPLE)
    assert ensure_instruments(db_engine) is None
    load_master(db_engine, _write(tmp_path / "small.json", _small_set()))
    assert ensure_instruments(db_engine) is None
    assert len(_keys(db_engine)) == len(_small_set())


# --- download -----------------------------------------------------------------------------------


@responses.activate
def test_load_from_url(db_engine, tmp_path, monkeypatch):
    download_dir = tmp_path / "downloads"
    download_dir.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(download_dir))
    body = gzip.compress(json.dumps(SAMPLE).encode())
    responses.get(MASTER_URL, body=body, content_type="application/gzip")
    report = load_master(db_engine, MASTER_URL, progress=True)
    assert report.rows_loaded == len(SAMPLE) and report.source == MASTER_URL
    assert list(download_dir.iterdir()) == []  # the temporary download is removed


@responses.activate
@pytest.mark.parametrize("failure", ["404", "connection"])
def test_failed_download_leaves_the_previous_set(db_engine, tmp_path, monkeypatch, failure):
    load_master(db_engine, None)
    download_dir = tmp_path / "downloads"
    download_dir.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(download_dir))
    if failure == "404":
        responses.get(MASTER_URL, status=404, body="Not Found")
    else:
        responses.get(MASTER_URL, body=requests.ConnectionError("connection reset"))
    with pytest.raises(InstrumentLoadError, match="download of instrument master"):
        load_master(db_engine, MASTER_URL)
    assert _keys(db_engine) == {row["instrument_key"] for row in SAMPLE}
    assert list(download_dir.iterdir()) == []


# --- the index ----------------------------------------------------------------------------------


def test_index_lookup_is_case_insensitive(db_engine):
    ensure_instruments(db_engine)
    index = InstrumentIndex.from_engine(db_engine)
    assert index.lookup("nifty29dec2624500ce", "nfo").instrument_key == "NSE_FO|52188"
    assert index.lookup("Idea", "nse").instrument_key == "NSE_EQ|INE669E01016"
    assert index.lookup("NIFTY", "NSE_INDEX").instrument_key == "NSE_INDEX|Nifty 50"
    assert index.by_key("NSE_EQ|INE009A01021").symbol == "INFY"
    assert index.by_key("NSE_EQ|NOPE") is None
    assert len(index) == len(SAMPLE)


def test_unknown_symbol_suggests_close_ones(db_engine):
    ensure_instruments(db_engine)
    index = InstrumentIndex.from_engine(db_engine)
    with pytest.raises(UnknownInstrument) as caught:
        index.lookup("NIFTY29DEC2624550CE", "NFO")
    assert "NIFTY29DEC2624500CE" in caught.value.suggestions and len(caught.value.suggestions) <= 5
    with pytest.raises(UnknownInstrument) as caught:
        index.lookup("infy", "BSE")  # INFY is only on NSE in the sample
    assert caught.value.exchange == "BSE" and "INFY" not in caught.value.suggestions
    with pytest.raises(UnknownInstrument) as caught:
        index.lookup("XYZXYZ", "NSE")
    assert caught.value.suggestions == []


def test_index_sees_a_new_generation(db_engine, tmp_path):
    load_master(db_engine, _write(tmp_path / "a.json", _small_set()))
    index = InstrumentIndex.from_engine(db_engine, check_seconds=0.0)
    first = index.generation
    with pytest.raises(UnknownInstrument):
        index.lookup("NIFTY29DEC26FUT", "NFO")

    report = load_master(db_engine, _write(tmp_path / "b.json", SAMPLE))
    assert index.lookup("NIFTY29DEC26FUT", "NFO").instrument_key == "NSE_FO|52101"
    assert index.generation == report.generation and index.generation > first


def test_index_checks_the_generation_only_every_interval(db_engine, tmp_path):
    load_master(db_engine, _write(tmp_path / "a.json", _small_set()))
    index = InstrumentIndex.from_engine(db_engine, check_seconds=3600)
    load_master(db_engine, _write(tmp_path / "b.json", SAMPLE))
    with pytest.raises(UnknownInstrument):  # not looked at the database yet
        index.lookup("NIFTY29DEC26FUT", "NFO")
    assert index.refresh(force=False) is True
    assert index.refresh(force=False) is False  # same generation: nothing to do
    assert index.lookup("NIFTY29DEC26FUT", "NFO").lot_size == 75
    assert index.refresh(force=True) is True


def test_readers_keep_working_during_reloads(db_engine, tmp_path):
    full = _write(tmp_path / "full.json", SAMPLE)
    load_master(db_engine, full)
    index = InstrumentIndex.from_engine(db_engine, check_seconds=0.0)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                assert index.lookup("IDEA", "NSE").instrument_key == "NSE_EQ|INE669E01016"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            load_master(db_engine, full)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    index.refresh(force=False)
    assert index.generation == 4


def test_a_lookup_during_the_first_build_never_sees_rows_without_their_owner(db_engine, monkeypatch):
    """The index publishes whose master it is with its rows: a lookup arriving while the first
    build was finishing once saw the rows but no owner yet and answered 404 (of two concurrent
    places, one was refused)."""
    from openalgo_gtt.store.instruments import index as index_module

    load_master(db_engine, None)
    master_of, owner_asked = index_module._master_of, threading.Event()

    def slow_master_of(*args):  # holds the build between its rows and their owner
        owner_asked.set()
        threading.Event().wait(0.3)
        return master_of(*args)

    monkeypatch.setattr(index_module, "_master_of", slow_master_of)
    index = InstrumentIndex(db_engine, master="upstox")
    first = threading.Thread(target=index.lookup, args=("IDEA", "NSE"))
    first.start()
    assert owner_asked.wait(10)
    # A second request, in the middle of the build: it either waits for the build or sees all of it.
    assert index.lookup("IDEA", "NSE").instrument_key == "NSE_EQ|INE669E01016"
    first.join()
