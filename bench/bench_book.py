"""Order book throughput: 8 concurrent clients on POST /api/v1/gttorderbook, against the same 8
clients on the fake Upstox's GET /v3/order/gtt.

The fake answers at once (latency 0) and holds 50 SINGLE GTTs placed through the gateway; each
client is a thread with its own requests.Session, hammering for the same time on each side.
Every gateway order book request costs the fake two calls (the list and one batched quote), so
the fake does more work per gateway answer than per direct one. The per-caller API rate limit
(RATE_LIMIT) is lifted for this run: eight clients hammering one key is a load test, not a caller.

    python bench/bench_book.py [--quick] [--out FILE]
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402

from _support import (  # noqa: E402
    IDEA_KEY, Prices, RemoteFake, gateway, median, ms, pct, place_body, row, standalone, upstox_headers,
)

CLIENTS = 8
GTTS = 50
MIN_RATIO = 0.3
LIFTED_RATE_LIMIT = "1000000 per second;100000000 per minute"


def _hammer(make_request, seconds: float) -> dict:
    """CLIENTS threads, each with its own Session, calling make_request(session) until the time
    is up; returns requests/second over the measured time and the latencies."""
    stop_at = [0.0]
    clock = [0.0]

    def release() -> None:  # run once, when every client is warm, before any is let go
        clock[0] = time.perf_counter()
        stop_at[0] = clock[0] + seconds

    barrier = threading.Barrier(CLIENTS, action=release)
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    failures: list[str] = []

    def client(i: int) -> None:
        with requests.Session() as session:
            try:
                for _ in range(3):  # connect and warm up before the clock starts
                    make_request(session)
                barrier.wait(timeout=120)
            except Exception as exc:  # noqa: BLE001 - one broken client must not hang the others
                failures.append(f"{type(exc).__name__}: {exc}")
                barrier.abort()
                return
            mine = latencies[i]
            while True:
                started = time.perf_counter()
                if started >= stop_at[0]:
                    break
                try:
                    ok = make_request(session)
                except requests.RequestException:
                    ok = False
                if ok:
                    mine.append(time.perf_counter() - started)
                else:
                    errors[i] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - clock[0]
    if failures:
        raise RuntimeError(f"a client failed before the run: {failures[0]}")
    every = [x for mine in latencies for x in mine]
    return {"requests": len(every), "errors": sum(errors), "seconds": round(elapsed, 3),
            "rps": round(len(every) / elapsed, 1), "median_ms": ms(median(every)), "p95_ms": ms(pct(every, 95))}


def run(quick: bool = False, **server_env: str) -> dict:
    seconds = 3.0 if quick else 10.0
    prices = Prices(1000)
    # Eight clients hammering one key is a load test, not a caller: lift the per-caller API rate
    # limit (counted all the same) so the run measures the order book, not the limiter's refusals.
    with RemoteFake(latency=0.0) as fake, gateway(fake, "book", RATE_LIMIT=LIFTED_RATE_LIMIT, **server_env) as (server, key):
        fake.set_price(IDEA_KEY, "IDEA", "NSE_EQ", "9.80", open="9.75")
        with requests.Session() as session:
            for _ in range(GTTS):  # the gateway paces these at 10/s
                response = session.post(f"{server.url}/api/v1/placegtt", json=place_body(key, prices.next()), timeout=30)
                if response.status_code != 200:
                    raise RuntimeError(f"place failed: {response.status_code} {response.text[:200]}")
            book = session.post(f"{server.url}/api/v1/gttorderbook", json={"apikey": key}, timeout=30).json()
        if len(book.get("data") or []) != GTTS:
            raise RuntimeError(f"the order book holds {len(book.get('data') or [])} GTTs, expected {GTTS}")

        book_url, book_body = f"{server.url}/api/v1/gttorderbook", {"apikey": key}
        fake_url, headers = f"{fake.url}/v3/order/gtt", upstox_headers(fake.token)

        def through_gateway(session: requests.Session) -> bool:
            response = session.post(book_url, json=book_body, timeout=30)
            return response.status_code == 200 and len(response.json()["data"]) == GTTS

        def straight(session: requests.Session) -> bool:
            response = session.get(fake_url, headers=headers, timeout=30)
            return response.status_code == 200 and len(response.json()["data"]) == GTTS

        fake.clear_calls()
        via_gateway = _hammer(through_gateway, seconds)
        fake_calls_per_book = round(len(fake.calls()) / max(via_gateway["requests"] + via_gateway["errors"]
                                                            + 3 * CLIENTS, 1), 2)
        direct = _hammer(straight, seconds)

    ratio = round(via_gateway["rps"] / direct["rps"], 3) if direct["rps"] else 0.0
    rows = [
        row("gateway POST /api/v1/gttorderbook (req/s)", via_gateway["rps"]),
        row("fake GET /v3/order/gtt directly (req/s)", direct["rps"]),
        row("gateway / fake throughput", ratio, f">= {MIN_RATIO}x", ratio >= MIN_RATIO),
        row("gateway median / p95 latency (ms)", f"{via_gateway['median_ms']} / {via_gateway['p95_ms']}"),
        row("direct median / p95 latency (ms)", f"{direct['median_ms']} / {direct['p95_ms']}"),
        row("errors (gateway, direct)", f"{via_gateway['errors']}, {direct['errors']}", "0, 0",
            via_gateway["errors"] == 0 and direct["errors"] == 0),
    ]
    return {
        "title": f"Order book throughput ({CLIENTS} clients, {seconds:.0f} s each side, {GTTS} GTTs, fake latency 0)",
        "rows": rows,
        "notes": [f"each gateway order book cost the fake {fake_calls_per_book} calls (list + batched quote)"],
        "data": {"gateway": via_gateway, "direct": direct, "ratio": ratio, "fake_calls_per_book": fake_calls_per_book},
    }


if __name__ == "__main__":
    sys.exit(standalone(run))
