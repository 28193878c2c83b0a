"""Instrument master benchmark: is loading cheap next to merely reading the file?

Generates a synthetic master in Upstox's row shape (equities, indices, futures, options),
gzips it into a temporary directory, and measures in the same run:
  (a) gzip decompress + json.load alone,
  (b) load_master into a fresh SQLite file (best of --repeat, each into a new file),
  (c) InstrumentIndex.lookup, mean microseconds over --lookups calls,
  (d) the index's memory (tracemalloc), and how long building it takes,
  (e) the whole command, as a user runs it: `python run.py instruments load FILE` in a fresh
      process (imports, schema check, read, load) against a fresh process that only gunzips and
      json.loads the same file, alternating, --cli-runs of each, medians. The database is loaded
      once first, so every timed run replaces 150k rows, as a daily reload does. With
      --postgres URL the command is also timed against PostgreSQL (in a schema of its own).

    python bench/bench_instruments.py [--rows 150000] [--out results.json] [--postgres URL]
"""
from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import uuid
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable from a plain checkout

from sqlalchemy import create_engine  # noqa: E402

from openalgo_gtt.store.instruments import InstrumentIndex, load_master  # noqa: E402
from openalgo_gtt.store.schema import metadata  # noqa: E402

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
        metadata.create_all(engine)
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


READ_ONLY = "import gzip, json, sys; json.load(gzip.open(sys.argv[1], 'rb'))"


def _timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def bench_cli(path: Path, database_url: str, runs: int) -> dict:
    """(e): medians of `run.py instruments load` and of a bare read, alternating, fresh processes."""
    env = {k: v for k, v in os.environ.items() if k not in ("ACCESS_TOKEN", "BROKER", "PYTHONPATH")}
    env.update(DATABASE_URL=database_url, BROKER="sandbox", LOG_LEVEL="WARNING",
               API_KEY_PEPPER="bench-pepper-" + "z" * 32)
    load = [sys.executable, str(REPO / "run.py"), "instruments", "load", str(path)]
    read = [sys.executable, "-c", READ_ONLY, str(path)]
    first_s = _timed(load, env)  # creates the schema and the first set
    loads, reads = [], []
    for i in range(runs):
        for command, times in ((load, loads), (read, reads)) if i % 2 else ((read, reads), (load, loads)):
            times.append(_timed(command, env))
    pairs = [a / b for a, b in zip(loads, reads)]
    return {"first_load_s": round(first_s, 3), "read_s": round(statistics.median(reads), 3),
            "load_s": round(statistics.median(loads), 3),
            "load_over_read": round(statistics.median(loads) / statistics.median(reads), 2),
            "pair_ratio_median": round(statistics.median(pairs), 2), "runs": runs}


def bench_cli_postgres(path: Path, url: str, runs: int) -> dict:
    """(e) against PostgreSQL, in a schema created for the run and dropped after it."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        bench_url = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        return bench_cli(path, bench_url.render_as_string(hide_password=False), runs)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b); the best counts")
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--cli-runs", type=int, default=7, help="runs of each process in (e); 0 skips (e)")
    parser.add_argument("--postgres", help="also time (e) against this PostgreSQL URL")
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
        cli = bench_cli(path, f"sqlite:///{workdir / 'cli.db'}", args.cli_runs) if args.cli_runs else None
        cli_pg = bench_cli_postgres(path, args.postgres, args.cli_runs) if args.cli_runs and args.postgres else None
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
            **({f"cli_{k}": v for k, v in cli.items()} if cli else {}),
            **({f"cli_pg_{k}": v for k, v in cli_pg.items()} if cli_pg else {}),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        }

    width = max(map(len, results))
    print("instrument master benchmark")
    for key, value in results.items():
        print(f"  {key:<{width}}  {value}")
    print(f"  target: load_over_read <= 3.0 -> {'OK' if results['load_over_read'] <= 3.0 else 'MISSED'}")
    if cli:
        print(f"  target: cli_load_over_read <= 3.0 -> {'OK' if results['cli_load_over_read'] <= 3.0 else 'MISSED'}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
