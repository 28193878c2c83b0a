"""Cost per request: broker calls and SQL statements per SINGLE place and per order book request.

In-process: the production app (create_app(gateway=Gateway.build(settings))) on a fresh SQLite
database upgraded with Alembic and holding the bundled sample master, driving the fake Upstox
(latency 0) through the real Upstox client. A `before_cursor_execute` listener on the gateway's
engine counts every statement; the fake counts the broker calls. Warm-up requests come first
(the first request with a key costs an argon2 check and fills the caches), then the average over
several requests. The place's statements are listed so their purpose can be read.

    python bench/bench_cost.py [--quick] [--out FILE]
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import PEPPER, TOKEN, Prices, place_body, row, standalone  # noqa: E402

MAX_PLACE_STATEMENTS = 3
PLACE_GAP_S = 0.11  # places spaced under the 10/s order pacer, so their time is work, not waiting


@contextmanager
def in_process_app(fake_url: str, workdir: Path, rate_limit: str | None = None) -> Iterator[tuple]:
    """(gateway, Flask app, API key) on a fresh SQLite database in `workdir`; caller rate limits
    off unless `rate_limit` is given (then checked as in production, at that limit)."""
    from openalgo_gtt.app import create_app
    from openalgo_gtt.config import load_settings
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.instruments import ensure_instruments
    from openalgo_gtt.store.migrate import upgrade

    environ = {
        "ACCESS_TOKEN": TOKEN, "UPSTOX_API_URL": fake_url, "DATABASE_URL": f"sqlite:///{workdir / 'cost.db'}",
        "API_KEY_PEPPER": PEPPER, "DAILY_TRADE_LIMIT": "1000000", "RATE_LIMIT_ENABLED": "false", "OCO_POLL_SECONDS": "600", "LOG_LEVEL": "WARNING",
    }
    if rate_limit is not None:
        environ.update(RATE_LIMIT_ENABLED="true", RATE_LIMIT=rate_limit)
    settings = load_settings(environ, cwd=workdir, read_dotenv=False)
    upgrade(settings.database_url)
    gateway = Gateway.build(settings)
    try:
        ensure_instruments(gateway.engine)
        key = gateway.api_keys.create("bench")
        yield gateway, create_app(gateway=gateway), key
    finally:
        gateway.close()


def _measure(client, fake, statements: list, commits: list, send, n: int, gap: float = 0.0) -> dict:
    per_request = []
    for _ in range(n):
        time.sleep(gap)
        fake.clear_calls()
        statements.clear()
        commits.clear()
        started = time.perf_counter()
        response = send()
        took = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"request failed: {response.status_code} {response.get_data(as_text=True)[:300]}")
        per_request.append({"statements": list(statements), "commits": len(commits),
                            "before_answer": sum(1 for _text, in_request in statements if in_request),
                            "broker": [c[:2] for c in fake.calls], "s": took})
    return {
        "requests": n,
        "sql_per_request": round(sum(len(r["statements"]) for r in per_request) / n, 2),
        "sql_max": max(len(r["statements"]) for r in per_request),
        "sql_before_answer_per_request": round(sum(r["before_answer"] for r in per_request) / n, 2),
        "commits_per_request": round(sum(r["commits"] for r in per_request) / n, 2),
        "broker_calls_per_request": round(sum(len(r["broker"]) for r in per_request) / n, 2),
        "broker_calls": sorted(Counter(f"{m} {p}" for r in per_request for m, p in r["broker"]).items()),
        "in_process_ms_mean": round(sum(r["s"] for r in per_request) / n * 1000, 2),
        "statements_of_last": [" ".join(text.split())[:80] + ("" if in_request else " [after the answer]")
                               for text, in_request in per_request[-1]["statements"]],
    }


def run(quick: bool = False) -> dict:
    from flask import has_request_context
    from sqlalchemy import event

    from tests.fakes.fake_upstox import FakeUpstox

    n = 5 if quick else 20
    prices = Prices(3000)
    with FakeUpstox(token=TOKEN, latency=0.0) as fake, tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "10.00", open="10.00")
        with in_process_app(fake.url, Path(tmp)) as (gateway, app, key):
            # (text, run inside the request): work done after the answer runs in the response's
            # close, once the request context is gone (lifecycle.after_answer).
            statements: list[tuple[str, bool]] = []
            commits: list[int] = []
            event.listen(gateway.engine, "before_cursor_execute",
                         lambda conn, cursor, statement, *rest: statements.append((statement, has_request_context())))
            event.listen(gateway.engine, "commit", lambda conn: commits.append(1))
            client = app.test_client()

            def place():
                return client.post("/api/v1/placegtt", json=place_body(key, prices.next()))

            def book():
                return client.post("/api/v1/gttorderbook", json={"apikey": key})

            for _ in range(3):  # warm-up: argon2 on the first request, caches, pooled connections
                place()
                book()
                time.sleep(PLACE_GAP_S)
            places = _measure(client, fake, statements, commits, place, n, gap=PLACE_GAP_S)
            books = _measure(client, fake, statements, commits, book, n)
            book_size = len(book().get_json()["data"])

    rows = [
        row("SINGLE place: broker calls per request", places["broker_calls_per_request"], "== 1",
            places["broker_calls_per_request"] == 1),
        row("SINGLE place: SQL statements per request", places["sql_per_request"], f"<= {MAX_PLACE_STATEMENTS}",
            places["sql_per_request"] <= MAX_PLACE_STATEMENTS),
        row("SINGLE place: of those, before the answer", places["sql_before_answer_per_request"]),
        row("SINGLE place: transactions committed per request", places["commits_per_request"]),
        row(f"order book ({book_size} GTTs): broker calls per request", books["broker_calls_per_request"], "<= 2",
            books["broker_calls_per_request"] <= 2),
        row(f"order book ({book_size} GTTs): SQL statements per request", books["sql_per_request"]),
        row("SINGLE place: in-process time, fake at 0 ms (ms)", places["in_process_ms_mean"]),
        row("order book: in-process time, fake at 0 ms (ms)", books["in_process_ms_mean"]),
    ]
    notes = (["SINGLE place statements, in order: "
              + "; ".join(f"({i}) `{text}`" for i, text in enumerate(places["statements_of_last"], 1))]
             + ["order book statements, in order: "
                + "; ".join(f"({i}) `{text}`" for i, text in enumerate(books["statements_of_last"], 1))])
    return {
        "title": f"Cost per request (in-process Flask test client, average of {n} after warm-up)",
        "rows": rows,
        "notes": notes,
        "data": {"place": places, "book": books, "book_size": book_size},
    }


if __name__ == "__main__":
    sys.exit(standalone(run))
