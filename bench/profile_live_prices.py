"""cProfile of bench_live_prices.py's processing reads: where a read's time goes, per read.

Builds the same sandbox (--gtts GTTs over --instruments instruments on SQLite) and profiles
--reads reads of `LivePrices.read_once` (quote source included, as its own line). Relative
numbers hold on a busy machine; wall times there do not.

    python bench/profile_live_prices.py [--gtts 10000] [--instruments 500] [--reads 20] [--top 40]
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from bench.bench_live_prices import FixedClock, WalkingQuotes  # noqa: E402
from bench.bench_sandbox import AT, workload  # noqa: E402
from openalgo_gtt.brokers.sandbox import SandboxBroker, Tick  # noqa: E402
from openalgo_gtt.services.live_prices import LivePrices  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gtts", type=int, default=10_000)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--cpu", action="store_true",
                        help="time with the process's CPU time: steadier on a busy machine (disk waits left out)")
    args = parser.parse_args(argv)

    from openalgo_gtt.store.db import make_session_factory
    from openalgo_gtt.store.engine import make_engine
    from openalgo_gtt.store.sandbox import SandboxRepository
    from openalgo_gtt.store.schema import metadata

    work = workload(args.gtts, args.instruments, 0, args.seed)
    with tempfile.TemporaryDirectory(prefix="profile-live-") as tmp:
        db = make_engine(f"sqlite:///{Path(tmp) / 'sandbox.db'}")
        metadata.create_all(db)
        broker = SandboxBroker(SandboxRepository(make_session_factory(db)), clock=lambda: AT)
        broker.apply_ticks([Tick(key, price, at=AT) for key, price in work.start.items()])
        for request in work.requests:
            broker.place_gtt(request)
        source = WalkingQuotes(work.start, args.seed)
        prices = LivePrices(broker, source, source_name="bench", settle=lambda ids: None, clock=FixedClock())
        prices.read_once()  # warm: statements compiled, caches filled
        gc.collect()
        profile = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
        profile.enable()
        for _ in range(args.reads):
            prices.read_once()
        profile.disable()
        db.dispose()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    total = stats.total_tt
    clock = "CPU" if args.cpu else "wall"
    print(f"{args.reads} reads, {total / args.reads * 1000:.1f} ms ({clock}) profiled per read (profiler overhead "
          f"included), {stats.total_calls / args.reads:.0f} function calls per read")
    width = max(len(pstats.func_std_string(f)) for f in stats.stats) if stats.stats else 40
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3 if args.sort == "cumulative" else 2], reverse=True)
    print(f"{'calls/read':>10} {'own ms/read':>11} {'cum ms/read':>11}  function")
    for func, (_cc, nc, tt, ct, _callers) in rows[:args.top]:
        print(f"{nc / args.reads:10.0f} {tt / args.reads * 1000:11.2f} {ct / args.reads * 1000:11.2f}  "
              f"{pstats.func_std_string(func)[:width]}")


if __name__ == "__main__":
    main()
