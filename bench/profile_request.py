"""Where does one request spend its time? A timed breakdown, then cProfile, over N SINGLE places
or N order books, in-process.

The production app on a fresh SQLite database (as bench_cost.py builds it), the Flask test
client, and the fake Upstox at latency 0 in a process of its own (so its work is not counted
here). Warm-up first (for the order book, --gtts places first); places are spaced 110 ms apart
so the 10/s order pacer never waits.

1. Breakdown, no profiler: wall time per request inside the main steps (each wrapped with a
   timer; nested steps are included in their parents), plus the DBAPI statement time.
2. cProfile over the same number of requests: top functions by cumulative and by own time.

    python bench/profile_request.py [--what place|book] [--n 100] [--gtts 50] [--top 30] [--out FILE.prof]
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import io
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import Prices, RemoteFake, place_body  # noqa: E402
from bench_cost import in_process_app  # noqa: E402

# (label, "module:Class.method"); a step that does not exist (the code moved on) is skipped.
STEPS = [
    ("API key check (verify)", "openalgo_gtt.services.apikeys:ApiKeyService.verify"),
    ("caller rate limits", "openalgo_gtt.services.abuse:CallerLimits.breach"),
    ("the place, all of it (PlaceGtt.__call__)", "openalgo_gtt.services.place:PlaceGtt.__call__"),
    ("  plan (instrument, prices)", "openalgo_gtt.services.planner:Planner.plan"),
    ("  begin: key, attempt, trade (one unit of work)", "openalgo_gtt.services.place:PlaceGtt._begin"),
    ("    claim the key (UnitOfWork.claim_request)", "openalgo_gtt.store.unit_of_work:UnitOfWork.claim_request"),
    ("    the attempt (UnitOfWork.begin_attempt)", "openalgo_gtt.store.unit_of_work:UnitOfWork.begin_attempt"),
    ("    the day's trade (DailyTradeLimit.take)", "openalgo_gtt.services.trade_limit:DailyTradeLimit.take"),
    ("  send (PlaceSender.send)", "openalgo_gtt.services.place_sender:PlaceSender.send"),
    ("    broker place_gtt (pacer + HTTP)", "openalgo_gtt.brokers.upstox:UpstoxBroker.place_gtt"),
    ("  record: GTT, answer, audit (one unit of work)", "openalgo_gtt.services.place:PlaceGtt._record"),
    ("    RECORDED (UnitOfWork.move_attempt)", "openalgo_gtt.store.unit_of_work:UnitOfWork.move_attempt"),
    ("    the GTT's row (AttemptDriver._add_trigger)", "openalgo_gtt.services.attempts:AttemptDriver._add_trigger"),
    ("    the answer kept (UnitOfWork.finish_request)", "openalgo_gtt.store.unit_of_work:UnitOfWork.finish_request"),
    ("    the audit row (UnitOfWork.audit)", "openalgo_gtt.store.unit_of_work:UnitOfWork.audit"),
    ("GttService.book_view (all of the use case)", "openalgo_gtt.services.gtt:GttService.book_view"),
    ("  book fetch, shared (list + our records)", "openalgo_gtt.services.order_book:Coalescer.get"),
    ("    our records (GttOrders.book_records)", "openalgo_gtt.store.gtt_orders:GttOrders.book_records"),
    ("  book build (quotes + entries + JSON)", "openalgo_gtt.services.order_book:Snapshot._build"),
    ("  broker list_gtts (HTTP)", "openalgo_gtt.brokers.upstox:UpstoxBroker.list_gtts"),
    ("  broker quotes (HTTP)", "openalgo_gtt.brokers.upstox:UpstoxBroker.quotes"),
    ("audit record (AuditLog.write)", "openalgo_gtt.services.audit:AuditLog.write"),
]


def _wrap_steps(totals: dict[str, float]) -> list:
    undo = []
    for label, target in STEPS:
        module_name, _, attr = target.partition(":")
        class_name, _, method = attr.partition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
            original = cls.__dict__[method]
        except (ImportError, AttributeError, KeyError):
            continue

        def timed(*args, __original=original, __label=label, **kwargs):
            started = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                totals[__label] += time.perf_counter() - started

        setattr(cls, method, functools.wraps(original)(timed))
        undo.append((cls, method, original))
    return undo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=("place", "book"), default="place")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--gtts", type=int, default=50, help="GTTs in the order book (--what book)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, help="also dump the raw profile here (for snakeviz etc.)")
    args = parser.parse_args(argv)

    from sqlalchemy import event

    prices = Prices(5000)
    n = args.n
    totals: dict[str, float] = defaultdict(float)
    with RemoteFake(latency=0.0) as fake, tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "10.00", open="10.00")
        # The caller limits are checked as in production, at a limit these requests never reach.
        with in_process_app(fake.url, Path(tmp), rate_limit="1000 per second") as (gateway, app, key):
            client = app.test_client()

            def before(conn, cursor, statement, parameters, context, executemany):
                conn.info["t0"] = time.perf_counter()

            def after(conn, cursor, statement, parameters, context, executemany):
                totals["SQL in the DBAPI (sqlite3 execute)"] += time.perf_counter() - conn.info.pop("t0")

            event.listen(gateway.engine, "before_cursor_execute", before)
            event.listen(gateway.engine, "after_cursor_execute", after)

            def place():
                return client.post("/api/v1/placegtt", json=place_body(key, prices.next()))

            def book():
                return client.post("/api/v1/gttorderbook", json={"apikey": key})

            for _ in range(10 if args.what == "place" else args.gtts):
                assert place().status_code == 200
                time.sleep(0.11)  # stay under the 10/s pacer: measure work, not waiting
            send = place if args.what == "place" else book

            def measure(profiler=None) -> tuple[float, float]:
                wall = cpu = 0.0
                for _ in range(n):
                    if args.what == "place":
                        time.sleep(0.11)
                    w0, c0 = time.perf_counter(), time.process_time()
                    if profiler:
                        profiler.enable()
                    response = send()
                    if profiler:
                        profiler.disable()
                    wall += time.perf_counter() - w0
                    cpu += time.process_time() - c0
                    assert response.status_code == 200, response.get_data(as_text=True)
                return wall, cpu

            undo = _wrap_steps(totals)
            totals.clear()
            wall, cpu = measure()
            for cls, method, original in undo:
                setattr(cls, method, original)
            profiler = cProfile.Profile()
            p_wall, _ = measure(profiler)

    what = "SINGLE places" if args.what == "place" else f"order books of {args.gtts} GTTs"
    print(f"{n} {what}, in-process (Flask test client), fake Upstox at 0 ms in another process")
    print(f"  {'whole request (wall)':<44} {wall / n * 1000:8.2f} ms")
    print(f"  {'whole request (CPU of this process)':<44} {cpu / n * 1000:8.2f} ms")
    for label, _ in STEPS + [("SQL in the DBAPI (sqlite3 execute)", "")]:
        if label in totals:
            print(f"  {label:<44} {totals[label] / n * 1000:8.2f} ms")
    print(f"\ncProfile (wall {p_wall / n * 1000:.2f} ms per request with the profiler on)")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
        text = out.getvalue()
        print(f"\n--- top {args.top} by {order} ---")
        print(text[text.index("   ncalls"):] if "   ncalls" in text else text)
    if args.out:
        profiler.dump_stats(str(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
