"""The exactly-once soak: TradingView-style alerts against three gunicorn workers on PostgreSQL
and Redis, with a fake Upstox that sometimes finishes late, answers 500 after doing the work, or
hangs. Used by tests/e2e/test_soak.py (a short run, asserting) and bench/soak_exactly_once.py (a
long run, printing the numbers of docs/reliability.md).

Each alert is sent like TradingView sends it: a 3-second patience, and on a 5xx or no answer it
is re-sent up to 3 more times, 5 seconds apart (the identical body: the gateway's dedupe key).
At the end, once every late GTT has had time to appear and be settled, the broker and the
gateway are compared."""
from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from sqlalchemy import create_engine, select

from openalgo_gtt.store.models import GttOrder
from tests.e2e.server import REPO, ServerProcess
from tests.arrivals import most_in_any_second
from tests.fakes.fake_upstox import FakeUpstox

IDEA = "NSE_EQ|INE669E01016"
ORDER_ROUTES = ("gtt.place", "gtt.modify", "gtt.cancel")
TV_PATIENCE, TV_RETRIES, TV_RETRY_GAP = 3.0, 3, 5.0
UPSTOX_TIMEOUT, SETTLE_SECONDS = 2.0, 10.0


@dataclass
class SoakReport:
    alerts: int
    limit: int
    faults: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)  # final HTTP status per alert
    gtts_at_broker: int = 0  # live (not cancelled) GTTs at the fake
    cancelled_at_broker: int = 0
    duplicates: int = 0  # alerts with more than one live GTT at the broker
    unknown_to_gateway: int = 0  # live GTTs at the broker the gateway has not recorded
    trade_count: int = 0
    most_order_calls_in_a_second: int = 0
    seconds: float = 0.0

    @property
    def holds(self) -> bool:
        return (self.duplicates == 0 and self.unknown_to_gateway == 0 and self.trade_count == self.gtts_at_broker
                and self.gtts_at_broker <= self.limit and self.most_order_calls_in_a_second <= 10)



def chaos(rng: random.Random, faults: Counter, lock: threading.Lock, fault_share: float):
    """A random fault for about `fault_share` of the place calls."""
    mix = [("late", False, None), ("500", True, None), ("hang", False, 4.0), ("hang", True, 4.0)]

    def draw(route: str):
        if route != "gtt.place":
            return None
        with lock:
            if rng.random() >= fault_share:
                return None
            kind, after_work, seconds = rng.choice(mix)
            if kind == "late":  # within the window, just after it, or long after it
                seconds = rng.choice([3.0, 6.0, 11.0, 14.0])
            faults[f"{kind}{' after work' if after_work else ''}"] += 1
            return kind, after_work, seconds
    return draw


def run_soak(workdir, database_url: str, redis_url: str, *, alerts: int, limit: int, fault_share: float,
             seed: int = 7, spread: float = 10.0) -> SoakReport:
    report = SoakReport(alerts=alerts, limit=limit)
    rng, lock = random.Random(seed), threading.Lock()
    started = time.monotonic()
    with FakeUpstox(token="soak-token", latency=0.02) as fake:
        fake.set_price(IDEA, "IDEA", "NSE_EQ", "9.50", open="10.00")
        fake.chaos = chaos(rng, report.faults, lock, fault_share)
        helper = ServerProcess(workdir, database_url, ACCESS_TOKEN=fake.token, UPSTOX_API_URL=fake.url,
                               UPSTOX_TIMEOUT=str(UPSTOX_TIMEOUT), SETTLE_SECONDS=str(SETTLE_SECONDS),
                               DAILY_TRADE_LIMIT=str(limit), OCO_POLL_SECONDS="1", RATE_LIMIT_STORAGE_URI=redis_url,
                               RATE_LIMIT="10000 per second",
                               ORDER_RATE_LIMITS=f"10/second;500/minute;{2000 + uuid.uuid4().int % 1000}/30 minutes")
        key = helper.cli("apikey", "create", "soak").stdout.strip().splitlines()[-1]
        with start_gunicorn(helper, workers=3, threads=8):
            _send_alerts(helper.url, key, alerts, spread, rng, report)
            # Every late GTT appears within 14 s of its request, and the watcher polls every second.
            time.sleep(14.0 + SETTLE_SECONDS / 2)
            _compare(helper.url, fake, database_url, report)
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def start_gunicorn(server: ServerProcess, *, workers: int = 3, threads: int = 8,
                   up_within: float = 60.0) -> Iterator[subprocess.Popen]:
    """gunicorn with gunicorn.conf.py serving `server`'s working directory, environment and port
    (a ServerProcess used for its settings and its CLI, never started itself), with `workers`
    worker processes of `threads` threads; its output goes to gunicorn.log there. Yields the
    gunicorn master once /api/health answers 200 (the URL is `server.url`); stops it on the way
    out. If it does not come up within `up_within` seconds, it is killed and the error is its log."""
    server.env.update(WEB_CONCURRENCY=str(workers), GUNICORN_THREADS=str(threads))
    log_path = server.workdir / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"),
                                    "openalgo_gtt.wsgi:app"], cwd=server.workdir, env=server.env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            _wait_until_up(server.url, process, log_path, up_within)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_up(url: str, process: subprocess.Popen, log_path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(log_path.read_text(errors="replace"))


def _send_alerts(url: str, key: str, alerts: int, spread: float, rng: random.Random, report: SoakReport) -> None:
    counting = threading.Lock()

    def alert(n: int, delay: float) -> None:
        time.sleep(delay)
        body = {"apikey": key, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1,
                "trigger_type": "SINGLE", "product": "CNC", "triggerprice_tg": f"{9.6 + n / 100:.2f}"}
        status = None
        for attempt in range(1 + TV_RETRIES):
            try:
                status = requests.post(f"{url}/api/v1/placegtt", json=body, timeout=TV_PATIENCE).status_code
            except requests.RequestException:
                status = "no answer"
            if status != "no answer" and status < 500:
                break
            if attempt < TV_RETRIES:
                time.sleep(TV_RETRY_GAP)
        with counting:
            report.answers[status] += 1

    delays = sorted(rng.uniform(0, spread) for _ in range(alerts))
    threads = [threading.Thread(target=alert, args=(n, d)) for n, d in enumerate(delays)]
    [t.start() for t in threads]
    [t.join() for t in threads]


def _compare(url: str, fake: FakeUpstox, database_url: str, report: SoakReport) -> None:
    live = [g for g in fake.gtts() if any(r["status"] == "SCHEDULED" for r in g["rules"])]
    report.gtts_at_broker = len(live)
    report.cancelled_at_broker = len(fake.gtts()) - len(live)
    per_alert = Counter(str(g["rules"][0]["trigger_price"]) for g in live)
    report.duplicates = sum(1 for count in per_alert.values() if count > 1)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        known = {broker_id for row in conn.execute(select(GttOrder.broker_ids)) for broker_id in row[0]}
    engine.dispose()
    report.unknown_to_gateway = sum(1 for g in live if g["gtt_order_id"] not in known)
    report.trade_count = requests.get(f"{url}/api/health", timeout=5).json()["today_trade_count"]
    report.most_order_calls_in_a_second = most_in_any_second(
        [t for route in ORDER_ROUTES for _, _, t in fake.calls_to(route)])
