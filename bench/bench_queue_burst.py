"""A candle close on three workers: 300 TradingView alerts at once (text/plain, 50 threads)
against three gunicorn workers on PostgreSQL and Redis and the fake Upstox at 50 ms.

Reported: how many callers heard a 2xx within TradingView's 3 s; the time until the last GTT is
placed, against the physical limit of 30 s at Upstox's 10 order calls a second; the order calls
a second that reached the broker while the queue was sent (from the fake's arrival times); the
most in any one second; and that each alert has exactly one GTT.

    python bench/bench_queue_burst.py [--alerts 300] [--database URL] [--redis URL] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from tests.arrivals import most_in_any_second  # noqa: E402
from tests.e2e.server import ServerProcess  # noqa: E402
from tests.e2e.soak import start_gunicorn  # noqa: E402
from tests.fakes.fake_upstox import FakeUpstox  # noqa: E402

THREADS = 50
PATIENCE = 3.0  # TradingView's


def run(database_url: str, redis_url: str, alerts: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, FakeUpstox(token="burst-token", latency=0.05) as fake:
        workdir = Path(tmp)
        fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "9.50", open="9.50")
        helper = ServerProcess(workdir, database_url, ACCESS_TOKEN=fake.token, UPSTOX_API_URL=fake.url,
                               DAILY_TRADE_LIMIT="100000", OCO_POLL_SECONDS="1", RATE_LIMIT_STORAGE_URI=redis_url,
                               # One key sends all 300: above the default burst of 200 per key.
                               RATE_LIMIT="1000 per 10 seconds",
                               ORDER_RATE_LIMITS=f"10/second;500/minute;{2000 + uuid.uuid4().int % 1000}/30 minutes")
        key = helper.cli("apikey", "create", "burst").stdout.strip().splitlines()[-1]
        with start_gunicorn(helper, workers=3, threads=8):
            return _burst(helper.url, key, fake, alerts)


def _burst(url: str, key: str, fake: FakeUpstox, alerts: int) -> dict:
    answers: list[tuple[int, float]] = []
    lock, start = threading.Lock(), threading.Barrier(THREADS)

    def send(ns: list[int]) -> None:
        http = requests.Session()
        start.wait()
        for n in ns:
            body = json.dumps({"apikey": key, "symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": 1,
                               "trigger_type": "SINGLE", "triggerprice_tg": f"{10 + n / 100:.2f}"})
            began = time.monotonic()
            try:
                status = http.post(f"{url}/api/v1/placegtt", data=body, headers={"Content-Type": "text/plain"},
                                   timeout=PATIENCE).status_code
            except requests.RequestException:
                status = 0
            with lock:
                answers.append((status, time.monotonic() - began))

    released = time.monotonic()
    threads = [threading.Thread(target=send, args=(list(range(i, alerts, THREADS)),)) for i in range(THREADS)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    deadline = time.monotonic() + 120
    while len(fake.gtts()) < alerts and time.monotonic() < deadline:
        time.sleep(0.2)
    arrivals = sorted(at for _, _, at in fake.calls_to("gtt.place"))
    prices = Counter(g["rules"][0]["trigger_price"] for g in fake.gtts())
    last = arrivals[-1] - released if arrivals else None
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else None
    return {
        "alerts": alerts,
        "answered_2xx_within_3s": sum(1 for s, took in answers if s in (200, 202) and took < PATIENCE),
        "answers": dict(Counter(s for s, _ in answers)),
        "slowest_answer_s": round(max(took for _, took in answers), 2),
        "last_gtt_placed_after_s": round(last, 1) if last is not None else None,
        "physical_limit_s": alerts / 10,
        "within_10pct_of_limit": last is not None and last <= alerts / 10 * 1.10,
        "order_calls_per_second": round(rate, 2) if rate else None,
        "most_in_any_second": most_in_any_second(arrivals),
        "each_alert_one_gtt": len(prices) == alerts and set(prices.values()) == {1},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--out")
    args = parser.parse_args()
    schema = f"burst_{uuid.uuid4().hex[:12]}"
    admin = create_engine(args.database)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{args.database}{'&' if '?' in args.database else '?'}options=-csearch_path%3D{schema}"
        result = run(url, args.redis, args.alerts)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["each_alert_one_gtt"] and result["answered_2xx_within_3s"] == args.alerts else 1


if __name__ == "__main__":
    sys.exit(main())
