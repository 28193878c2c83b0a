"""Live sandbox prices (issue 27): 500 watched symbols at one quote call a second, and 10,000
live sandbox GTTs kept up with.

Builds --gtts GTTs over --instruments instruments (bench_sandbox.py's workload: singles and
brackets, trailing stops, both sides) in a SandboxBroker on SQLite, then drives it with
services/live_prices.py's `LivePrices` over an in-memory quote source whose prices random-walk
on every read (so GTTs fire, become paper orders, trades and positions as they would live):
  (a) processing: --reads reads without pacing; each read is one batched quote for every
      watched symbol, applied through the trigger engine and the paper desk in one sandbox
      transaction; the time of each read (quote source excluded) is reported, p50/p95/max;
  (b) pacing: reads as fast as the thread would make them for --paced-seconds, through the
      quote pacer (SANDBOX_QUOTE_RATE_LIMITS, 1/second): the quote calls made, and the symbols
      in each call (all of them: one call covers up to 500).

    python bench/bench_live_prices.py [--gtts 10000] [--instruments 500] [--reads 30] [--out results.json]
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from bench.bench_sandbox import AT, TICK_SIZE, workload  # noqa: E402
from openalgo_gtt.brokers.pacing import OrderPacer  # noqa: E402
from openalgo_gtt.brokers.sandbox import SandboxBroker, Tick  # noqa: E402
from openalgo_gtt.domain.model import Quote  # noqa: E402
from openalgo_gtt.services.live_prices import LivePrices  # noqa: E402


class WalkingQuotes:
    """A QuoteSource whose every read moves each price by up to 0.25%, in whole ticks."""

    def __init__(self, start: dict[str, Decimal], seed: int) -> None:
        self.prices = dict(start)
        self.rng = random.Random(seed)
        self.calls: list[int] = []  # symbols per call

    def last_prices(self, keys):
        self.calls.append(len(keys))
        answer = {}
        for key in keys:
            price = self.prices[key]
            step = max(1, int(float(price) * 0.0025 / float(TICK_SIZE)))
            price = max(TICK_SIZE, price + TICK_SIZE * self.rng.randint(-step, step))
            self.prices[key] = price
            answer[key] = Quote(key, price, None)
        return answer


class FixedClock:
    def now(self):
        return AT


def run(n_gtts: int, n_instruments: int, reads: int, paced_seconds: float, seed: int) -> dict:
    from sqlalchemy.orm import close_all_sessions

    from openalgo_gtt.store.db import make_session_factory
    from openalgo_gtt.store.engine import make_engine
    from openalgo_gtt.store.sandbox import SandboxRepository
    from openalgo_gtt.store.schema import metadata

    work = workload(n_gtts, n_instruments, 0, seed)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        db = make_engine(f"sqlite:///{Path(tmp) / 'sandbox.db'}")
        metadata.create_all(db)
        broker = SandboxBroker(SandboxRepository(make_session_factory(db)), clock=lambda: AT)
        broker.apply_ticks([Tick(key, price, at=AT) for key, price in work.start.items()])
        for request in work.requests:
            broker.place_gtt(request)
        source = WalkingQuotes(work.start, seed)
        settled: list[str] = []
        prices = LivePrices(broker, source, source_name="bench", settle=settled.extend, clock=FixedClock())
        gc.collect()
        times = []
        for _ in range(reads):
            started = time.perf_counter()
            prices.read_once()
            times.append(time.perf_counter() - started)
        watched = len(broker.watched_instruments())
        trades = len(broker.paper_trades())

        pacer = OrderPacer("1/second", key="bench-quotes")
        paced = LivePrices(broker, source, source_name="bench", settle=settled.extend, pace=pacer.acquire,
                           clock=FixedClock())
        before = len(source.calls)
        started = time.perf_counter()
        while time.perf_counter() - started < paced_seconds:
            paced.read_once()
        elapsed = time.perf_counter() - started
        calls = source.calls[before:]
        close_all_sessions()
        db.dispose()
    ms = sorted(t * 1000 for t in times)
    return {
        "gtts": n_gtts, "instruments": n_instruments, "watched_symbols": watched, "reads": reads,
        "read_ms_p50": round(statistics.median(ms), 1), "read_ms_p95": round(ms[int(len(ms) * 0.95) - 1], 1),
        "read_ms_max": round(ms[-1], 1), "gtts_settled": len(set(settled)), "paper_trades": trades,
        "paced_seconds": round(elapsed, 2), "paced_quote_calls": len(calls),
        "symbols_per_call": sorted(set(calls)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gtts", type=int, default=10_000)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    result = run(args.gtts, args.instruments, args.reads, args.paced_seconds, args.seed)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
