"""Instrument master benchmark: is loading cheap next to merely reading the file?

Generates a synthetic master in Upstox's row shape (equities, indices, futures, options),
gzips it into a temporary directory, and measures in the same run:
  (a) gzip decompress + json.load alone,
  (b) load_master into a fresh SQLite file (best of --repeat, each into a new file),
  (c) InstrumentIndex.lookup, mean microseconds over --lookups calls,
  (d) the index's memory (tracemalloc), and how long building it takes.

    python bench/bench_instruments.py [--rows 150000] [--out results.json]
"""
from __future__ import annotations

import argparse
import gc
import gzip
import json
import platform
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from sqlalchemy import create_engine  # noqa: E402

from openalgo_gtt.store.instruments import InstrumentIndex, load_master  # noqa: E402
from openalgo_gtt.store.models import Base  # noqa: E402

IST = timezone(timedelta(hours=5, minutes=30))
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, 15, 30, tzinfo=IST).timestamp() * 1000)


def synthetic_master(total: int, seed: int = 7) -> list[dict]:
    """About 4% equities, 0.2% indices, 3% futures, the rest options: the real file's mix."""
    rng = random.Random(seed)
    rows: list[dict] = []
    token = 100_000
    n_stocks = max(50, total // 25)
    stocks = [f"STK{i:04d}" for i in range(n_stocks)]
    for i, sym in enumerate(stocks):
        isin = f"INE{i:06d}01{i % 10}"
        for segment in ("NSE_EQ", "BSE_EQ") if i % 3 == 0 else ("NSE_EQ",):
            rows.append({
                "segment": segment, "name": f"{sym} LIMITED", "exchange": segment[:3], "isin": isin,
                "instrument_type": "EQ", "instrument_key": f"{segment}|{isin}", "lot_size": 1,
                "freeze_quantity": 100000.0, "exchange_token": str(token), "tick_size": rng.choice((5.0, 10.0)),
                "trading_symbol": sym, "short_name": sym.title(), "security_type": "NORMAL",
            })
            token += 1
    for i in range(max(4, total // 500)):
        segment = "NSE_INDEX" if i % 4 else "BSE_INDEX"
        rows.append({
            "segment": segment, "name": f"Index {i}", "exchange": segment[:3], "instrument_type": "INDEX",
            "instrument_key": f"{segment}|Index {i}", "exchange_token": str(token), "trading_symbol": f"INDEX {i}",
        })
        token += 1

    expiries = [date(2026, 12, 29) + timedelta(days=7 * k) for k in range(12)]
    underlyings = ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"] + stocks[:200]
    while len(rows) < total:
        under = rng.choice(underlyings)
        expiry = rng.choice(expiries)
        label = f"{expiry.day:02d} {MONTHS[expiry.month - 1]} {expiry.year % 100:02d}"
        kind = "FUT" if rng.random() < 0.03 else rng.choice(("CE", "PE"))
        strike = 0.0 if kind == "FUT" else float(rng.randrange(100, 60000, 50))
        if kind != "FUT" and rng.random() < 0.05:
            strike += 0.5  # some decimal strikes
        strike_text = f"{strike:g}"
        trading_symbol = f"{under} FUT {label}" if kind == "FUT" else f"{under} {strike_text} {kind} {label}"
        rows.append({
            "weekly": False, "segment": "NSE_FO", "name": under, "exchange": "NSE",
            "expiry": _epoch_ms(expiry), "instrument_type": kind, "asset_symbol": under,
            "underlying_symbol": under, "instrument_key": f"NSE_FO|{token}", "lot_size": 75,
            "freeze_quantity": 1800.0, "exchange_token": str(token), "minimum_lot": 75,
            "asset_key": f"NSE_INDEX|{under}", "underlying_key": f"NSE_INDEX|{under}", "tick_size": 5.0,
            "asset_type": "INDEX", "underlying_type": "INDEX", "trading_symbol": trading_symbol,
            "strike_price": strike, "qty_multiplier": 1.0,
        })
        token += 1
    return rows[:total]


def bench_read(path: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        with gzip.open(path, "rb") as fh:
            json.load(fh)
        best = min(best, time.perf_counter() - started)
    return best


def bench_load(path: Path, workdir: Path, repeat: int):
    best, report, engine = float("inf"), None, None
    for i in range(repeat):
        if engine is not None:
            engine.dispose()
        engine = create_engine(f"sqlite:///{workdir / f'bench-{i}.db'}")
        Base.metadata.create_all(engine)
        gc.collect()
        started = time.perf_counter()
        report = load_master(engine, path)
        best = min(best, time.perf_counter() - started)
    return best, report, engine


def bench_index(engine, lookups: int, seed: int = 11) -> dict:
    # Memory first, in a build of its own: tracemalloc slows allocation several times over.
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    measured = InstrumentIndex.from_engine(engine)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    index_bytes = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del measured

    gc.collect()
    started = time.perf_counter()
    index = InstrumentIndex.from_engine(engine, check_seconds=5.0)
    build_seconds = time.perf_counter() - started

    rng = random.Random(seed)
    everything = list(index._current().by_key.values())  # bench only: pick real (symbol, exchange) pairs
    pairs = [(info.symbol.lower() if i % 2 else info.symbol, info.exchange)
             for i, info in enumerate(rng.choices(everything, k=lookups))]
    lookup = index.lookup
    gc.collect()
    started = time.perf_counter()
    for symbol, exchange in pairs:
        lookup(symbol, exchange)
    lookup_us = (time.perf_counter() - started) / lookups * 1e6
    return {"index_build_s": build_seconds, "index_mb": index_bytes / 2**20, "lookup_us": lookup_us,
            "instruments": len(everything)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b); the best counts")
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-instruments-") as tmp:
        workdir = Path(tmp)
        path = workdir / "complete.json.gz"
        rows = synthetic_master(args.rows)
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(rows, fh, separators=(",", ":"))
        del rows

        read_s = bench_read(path, args.repeat)
        load_s, report, engine = bench_load(path, workdir, args.repeat)
        index = bench_index(engine, args.lookups)
        engine.dispose()
        results = {
            "rows": args.rows,
            "gzip_mb": round(path.stat().st_size / 2**20, 2),
            "read_json_s": round(read_s, 3),
            "load_master_s": round(load_s, 3),
            "load_over_read": round(load_s / read_s, 2),
            "rows_loaded": report.rows_loaded,
            "rows_skipped": report.rows_skipped,
            "index_build_s": round(index["index_build_s"], 3),
            "index_mb": round(index["index_mb"], 1),
            "lookup_us": round(index["lookup_us"], 3),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        }

    width = max(map(len, results))
    print("instrument master benchmark")
    for key, value in results.items():
        print(f"  {key:<{width}}  {value}")
    print(f"  target: load_over_read <= 3.0 -> {'OK' if results['load_over_read'] <= 3.0 else 'MISSED'}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
