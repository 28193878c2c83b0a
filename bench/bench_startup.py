"""Startup time and memory per worker process with the full instrument master loaded.

Generates the synthetic 150,000-row master (bench_instruments' generator: Upstox's row shape
and mix), loads it with `python run.py instruments load FILE` into a fresh SQLite database, then,
for each run: spawns `python run.py` and times it until GET /api/health answers, and reads the
server process's resident memory (psutil if installed, else /proc/<pid>/status) at that point,
after one order book request and after one SINGLE place. The instrument index is built lazily
by the first request that resolves a symbol, so the place's time and the memory after it include
building the 150k-instrument index. The fake Upstox (latency 0) stands in for the broker.

    python bench/bench_startup.py [--quick] [--out FILE]     (--quick: 30,000 rows, one run)
"""
from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402

from _support import BenchServer, RemoteFake, gateway_env, row, rss_kb, standalone  # noqa: E402
from bench_instruments import synthetic_master  # noqa: E402


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


def run(quick: bool = False) -> dict:
    rows_wanted = 30_000 if quick else 150_000
    runs = 1 if quick else 2
    results = []
    with RemoteFake(latency=0.0) as fake, tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp_path = Path(tmp)
        master = synthetic_master(rows_wanted)
        stock = next(r for r in master if r["segment"] == "NSE_EQ")
        symbol, key = stock["trading_symbol"], stock["instrument_key"]
        path = tmp_path / "complete.json.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(master, fh, separators=(",", ":"))
        del master
        fake.set_price(key, symbol, "NSE_EQ", "250.00", open="250.00")

        server = BenchServer(tmp_path / "srv", f"sqlite:///{tmp_path / 'gateway.db'}", **gateway_env(fake))
        started = time.perf_counter()
        loaded = server.cli("instruments", "load", str(path))
        load_s = time.perf_counter() - started
        api_key = server.create_key()
        db_mb = round((tmp_path / "gateway.db").stat().st_size / 2**20, 1)

        for n in range(runs):
            try:
                server.start(timeout=120)
                pid = server.process.pid
                at_health = rss_kb(pid)
                with requests.Session() as session:
                    t0 = time.perf_counter()  # the first request with a key: its argon2 check
                    ping = session.post(f"{server.url}/api/v1/ping", json={"apikey": api_key}, timeout=60)
                    ping_s = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    book = session.post(f"{server.url}/api/v1/gttorderbook", json={"apikey": api_key}, timeout=60)
                    book_s = time.perf_counter() - t0
                    after_book = rss_kb(pid)
                    price = f"{250 + n}.00"
                    body = {"apikey": api_key, "symbol": symbol, "exchange": "NSE", "action": "BUY", "quantity": 1,
                            "trigger_type": "SINGLE", "product": "CNC", "triggerprice_tg": price, "price": price}
                    t0 = time.perf_counter()
                    place = session.post(f"{server.url}/api/v1/placegtt", json=body, timeout=60)
                    place_s = time.perf_counter() - t0
                    after_place = rss_kb(pid)
                    price = f"{260 + n}.00"
                    t0 = time.perf_counter()
                    second = session.post(f"{server.url}/api/v1/placegtt", json={**body, "triggerprice_tg": price,
                                                                                  "price": price}, timeout=60)
                    second_s = time.perf_counter() - t0
                for name, response in (("ping", ping), ("book", book), ("place", place), ("second place", second)):
                    if response.status_code != 200:
                        raise RuntimeError(f"{name} failed: {response.status_code} {response.text[:300]}")
                results.append({
                    "spawn_to_health_s": round(server.spawn_to_health_s, 3),
                    "rss_at_health_mb": _mb(at_health["rss_kb"]),
                    "first_ping_s": round(ping_s, 3),
                    "first_book_s": round(book_s, 3),
                    "rss_after_book_mb": _mb(after_book["rss_kb"]),
                    "first_place_s": round(place_s, 3),
                    "rss_after_place_mb": _mb(after_place["rss_kb"]),
                    "peak_rss_mb": _mb(after_place["hwm_kb"]),
                    "second_place_s": round(second_s, 3),
                })
            finally:
                server.stop()

    first = results[0]
    worst_start = max(r["spawn_to_health_s"] for r in results)
    rows = [
        row(f"instruments load {rows_wanted:,} rows via the CLI (s)", round(load_s, 1)),
        row("spawn to /api/health answering (s), per run", ", ".join(str(r["spawn_to_health_s"]) for r in results)),
        row("RSS at /api/health (MB)", first["rss_at_health_mb"]),
        row("first ping, the key's argon2 check (s)", first["first_ping_s"]),
        row("first order book (s) / RSS after (MB)", f"{first['first_book_s']} / {first['rss_after_book_mb']}"),
        row("first place (s) / RSS after (MB)",
            f"{first['first_place_s']} / {first['rss_after_place_mb']}"),
        row("next place (s)", first["second_place_s"]),
    ]
    if first["peak_rss_mb"] is not None:
        rows.append(row("peak RSS of the worker (VmHWM, MB)", first["peak_rss_mb"]))
    cli_said = loaded.stdout.strip().splitlines()[0].split(" from ")[0]  # without the temporary path
    notes = [f"the database with {rows_wanted:,} instruments is {db_mb} MB; the CLI said: {cli_said}",
             "the instrument index is built by the first request that needs it (here: "
             + ("the order book" if first["rss_after_book_mb"] - first["rss_at_health_mb"]
                > first["rss_after_place_mb"] - first["rss_after_book_mb"] else "the place") + ")"]
    first_alert = first["first_ping_s"] + first["first_book_s"]
    if first_alert > 3.0:
        notes.append(f"an alert arriving first after a start would pay the key's argon2 check and the index build "
                     f"in one request: about {first_alert:.1f} s, beyond TradingView's 3 s webhook timeout")
    return {
        "title": f"Startup and memory per worker ({rows_wanted:,}-instrument master, SQLite, {runs} run(s))",
        "rows": rows,
        "notes": notes,
        "data": {"rows": rows_wanted, "load_s": round(load_s, 2), "db_mb": db_mb, "runs": results,
                 "worst_spawn_to_health_s": worst_start},
    }


if __name__ == "__main__":
    sys.exit(standalone(run))
