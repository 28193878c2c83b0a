"""Which waitress thread count to ship: order book throughput (8 clients) and place latency
(fake at 50 ms) at SERVER_THREADS 4, 8 and 16, on this machine.

    python bench/bench_server_settings.py [--quick] [--out FILE]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_book  # noqa: E402
import bench_place_overhead  # noqa: E402
from _support import row, standalone  # noqa: E402

THREADS = (4, 8, 16)


def run(quick: bool = False) -> dict:
    rows, data = [], {}
    for threads in THREADS:
        book = bench_book.run(quick=True, SERVER_THREADS=str(threads))["data"]["gateway"]
        place = bench_place_overhead.run(quick=True, SERVER_THREADS=str(threads))["data"]
        data[threads] = {"book": book, "place": place}
        rows.append(row(f"SERVER_THREADS={threads}: book req/s, p95 ms", f"{book['rps']}, {book['p95_ms']}"))
        rows.append(row(f"SERVER_THREADS={threads}: place overhead median at 50 ms (ms)",
                        place["latency_50ms"]["median_overhead_ms"]))
    return {"title": "waitress threads (quick runs)", "rows": rows, "data": data}


if __name__ == "__main__":
    sys.exit(standalone(run))
