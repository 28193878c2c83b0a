"""A short exactly-once soak (tests/e2e/soak.py): three gunicorn workers on PostgreSQL and
Redis, a third of the places faulted (late, 500 after the work, hangs before and after it), and
TradingView's retries. It always runs on this machine's PostgreSQL (TEST_DATABASE_URL, or the
local server), once: .ci/run leaves it out of its second, PostgreSQL pass. Without a PostgreSQL
it is skipped, unless OPENALGO_GTT_REQUIRE_POSTGRES=1 (CI sets it): then it fails."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tests.e2e.soak import run_soak, start_gunicorn

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# One worker runs, in turn, the tests that count Upstox's order calls a second across processes
# sharing a Redis pacer: this one, test_gunicorn.py and tests/integration/test_shared_pacing.py.
# The soak's gunicorn workers and test_gunicorn.py's pace through one schedule in the test Redis
# (the pacer's key is the same for every server): at once, each would spend the other's slots (the
# gunicorn test's 40 places, due within their 5 s budget, would meet the pacer's 429). And each
# bursts from several processes at once: two such bursts on a 2-core machine starve each other's
# sends past the pacer's margin, which is then the machine, not the pacer, being measured.
pytestmark = pytest.mark.xdist_group("order-rate")


@pytest.fixture
def postgres_url():
    base_url = os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES)
    schema = f"soak_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(base_url, connect_args={"connect_timeout": 5})
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (SQLAlchemyError, ImportError) as exc:  # no server there, or no PostgreSQL driver
        why = f"no PostgreSQL at {make_url(base_url).render_as_string(hide_password=True)} ({type(exc).__name__})"
        if os.environ.get("OPENALGO_GTT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{why}, and OPENALGO_GTT_REQUIRE_POSTGRES=1: the soak must run")
        pytest.skip(f"{why}: the soak runs on PostgreSQL only (CI sets OPENALGO_GTT_REQUIRE_POSTGRES=1 "
                    "and never skips it)")
    yield f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_no_duplicate_no_unknown_gtt_and_an_exact_count_under_faults_and_retries(tmp_path, postgres_url, redis_url):
    url, _prefix, _client = redis_url
    report = run_soak(tmp_path, postgres_url, url, alerts=40, limit=30, fault_share=0.35)
    assert sum(report.faults.values()) >= 5, report  # the faults really happened
    assert report.duplicates == 0, report
    assert report.unknown_to_gateway == 0, report
    assert report.trade_count == report.gtts_at_broker, report
    assert report.gtts_at_broker <= report.limit, report
    assert report.most_order_calls_in_a_second <= 10, report


def test_a_burst_across_three_workers_survives_its_sender_killed(tmp_path, postgres_url, redis_url):
    """60 TradingView alerts at once against three gunicorn workers on PostgreSQL and Redis; in
    the middle of the burst the worker sending the queue (the lease holder) is killed. TradingView
    re-sends what got no answer or a 5xx. Nothing is lost, nothing placed twice: every alert ends
    as exactly one GTT, every GTT at the broker is known to the gateway."""
    import json
    import signal
    import threading
    import time
    from collections import Counter

    import requests

    from openalgo_gtt.store.models import Lease
    from tests.e2e.server import ServerProcess
    from tests.fakes.fake_upstox import FakeUpstox

    redis, alerts = redis_url[0], 60
    with FakeUpstox(token="kill-token", latency=0.05) as fake:
        fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "9.50", open="9.50")
        helper = ServerProcess(tmp_path, postgres_url, ACCESS_TOKEN=fake.token, UPSTOX_API_URL=fake.url,
                               UPSTOX_TIMEOUT="2", SETTLE_SECONDS="2", DAILY_TRADE_LIMIT="1000",
                               OCO_POLL_SECONDS="0.5", RATE_LIMIT_STORAGE_URI=redis, RATE_LIMIT="10000 per second",
                               ORDER_RATE_LIMITS=f"10/second;500/minute;{2000 + uuid.uuid4().int % 1000}/30 minutes")
        key = helper.cli("apikey", "create", "kill").stdout.strip().splitlines()[-1]
        engine = create_engine(postgres_url)
        try:
            with start_gunicorn(helper, workers=3, threads=8):
                start = threading.Barrier(20)

                def send(ns: list[int]) -> None:
                    start.wait()
                    for n in ns:
                        body = json.dumps({"apikey": key, "symbol": "IDEA", "exchange": "NSE", "action": "BUY",
                                           "quantity": 1, "trigger_type": "SINGLE",
                                           "triggerprice_tg": f"{10 + n / 100:.2f}"})
                        for _ in range(3):  # TradingView: a 5xx or no answer is sent again
                            try:
                                status = requests.post(f"{helper.url}/api/v1/placegtt", data=body, timeout=3,
                                                       headers={"Content-Type": "text/plain"}).status_code
                            except requests.RequestException:
                                status = None
                            if status is not None and status < 500:
                                break
                            time.sleep(1)

                threads = [threading.Thread(target=send, args=(list(range(i, alerts, 20)),)) for i in range(20)]
                [t.start() for t in threads]
                time.sleep(1.0)  # the burst is in, the queue is being sent
                with engine.connect() as conn:
                    holder = conn.execute(select(Lease.holder).where(Lease.name == "gtt-watcher")).scalar()
                os.kill(int(holder.split(":")[1]), signal.SIGKILL)
                [t.join() for t in threads]
                deadline = time.monotonic() + 90
                while len(fake.gtts()) < alerts and time.monotonic() < deadline:
                    time.sleep(0.5)
                time.sleep(3)  # anything placed twice would show by now
                prices = Counter(g["rules"][0]["trigger_price"] for g in fake.gtts() if g["rules"][0]["status"]
                                 not in ("CANCELLED",))
                assert len(prices) == alerts, f"{alerts - len(prices)} alerts lost"
                assert set(prices.values()) == {1}, {p: c for p, c in prices.items() if c > 1}
                book = requests.post(f"{helper.url}/api/v1/gttorderbook", json={"apikey": key}, timeout=10).json()
                assert len(book["data"]) == alerts  # every live GTT is the gateway's
        finally:
            engine.dispose()
