"""Several gunicorn workers on one database (and Redis for the shared windows): under 200
concurrent requests the daily limit stays exact, idempotency holds across workers, the watcher
runs once and no audit record is lost."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict

import pytest
import requests
from sqlalchemy import create_engine, func, select

from openalgo_gtt.store.models import AuditRecord, PlaceAttemptRow
from tests.arrivals import most_in_any_second
from tests.conftest import REDIS_URL
from tests.e2e.server import REPO, ServerProcess
from tests.fakes.remote_upstox import RemoteFake
from tests.waiting import until

LIMIT = 40

# With tests/e2e/test_soak.py, in one worker: see the mark there (one order-pacer schedule in Redis).
pytestmark = pytest.mark.xdist_group("order-rate")


@pytest.fixture
def fake_upstox():
    """The fake Upstox in a process of its own: it stamps each call's arrival, and with 200
    client threads in this process an in-process fake would stamp them late and bunched."""
    with RemoteFake(latency=0.02) as fake:
        fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "9.50", open="10.00")
        yield fake


@pytest.fixture
def gunicorn_server(tmp_path, database_url, fake_upstox):
    helper = ServerProcess(tmp_path, database_url, ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url,
                           DAILY_TRADE_LIMIT=str(LIMIT), OCO_POLL_SECONDS="0.5", LOG_LEVEL="INFO",
                           WEB_CONCURRENCY="3", GUNICORN_THREADS="8",
                           RATE_LIMIT_STORAGE_URI=REDIS_URL,
                           # 200 requests at once from one key is a load test, not a caller to limit
                           RATE_LIMIT="10000 per second",
                           ORDER_RATE_LIMITS=f"10/second;500/minute;{uuid.uuid4().int % 1000 + 2000}/30 minutes")
    key = helper.cli("apikey", "create", "workers").stdout.strip().splitlines()[-1]
    log = open(tmp_path / "gunicorn.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"),
                                "openalgo_gtt.wsgi:app"], cwd=tmp_path, env=helper.env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{helper.url}/api/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail((tmp_path / "gunicorn.log").read_text())
    yield helper.url, key, tmp_path / "gunicorn.log"
    process.terminate()
    process.wait(timeout=30)


def test_200_concurrent_requests_across_workers(gunicorn_server, fake_upstox, database_url):
    url, key, log = gunicorn_server
    place = {"apikey": key, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "SINGLE"}
    jobs = [("place", {**place, "triggerprice_tg": f"{9.6 + n / 100:.2f}"}) for n in range(80)]
    jobs += [("keyed", {**place, "triggerprice_tg": f"{11 + n / 100:.2f}", "idempotency_key": f"alert-{n}"})
             for n in range(12) for _ in range(5)]
    jobs += [("book", {"apikey": key})] * 60
    answers: list[tuple[str, dict, requests.Response]] = []
    lock, start = threading.Lock(), threading.Barrier(len(jobs))

    def send(kind, body):
        start.wait()
        path = "gttorderbook" if kind == "book" else "placegtt"
        response = requests.post(f"{url}/api/v1/{path}", json=body, timeout=120)
        with lock:
            answers.append((kind, body, response))

    threads = [threading.Thread(target=send, args=job) for job in jobs]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(answers) == 200

    placed = [r for kind, _, r in answers if kind != "book" and r.status_code == 200 and not r.json().get("duplicate")]
    assert len(placed) <= LIMIT  # at once; the rest of the burst is queued (202) or refused for the limit
    assert {r.status_code for kind, _, r in answers if kind != "book"} <= {200, 202, 429}
    assert all(r.status_code == 200 for kind, _, r in answers if kind == "book")
    engine = create_engine(database_url)

    def queue_sent() -> bool:  # nothing queued, nothing on its way to the broker
        with engine.connect() as conn:
            return not conn.execute(select(func.count()).select_from(PlaceAttemptRow).where(
                PlaceAttemptRow.state.in_(["queued", "sending"]))).scalar()

    until(queue_sent, "the queue to be sent by the lease holder")
    place_calls = fake_upstox.calls_to("gtt.place")
    assert len(place_calls) == LIMIT  # the daily limit is exact across workers, queue included
    # Three workers share Upstox's 10 order calls a second through Redis, counted on arrival.
    assert most_in_any_second([at for _, _, at in place_calls]) <= 10
    assert requests.get(f"{url}/api/health", timeout=5).json()["today_trade_count"] == LIMIT

    by_key = defaultdict(set)
    for kind, body, response in answers:
        if kind == "keyed":
            answer = response.json()
            by_key[body["idempotency_key"]].add((response.status_code, answer.get("trigger_id")))
    # One outcome per key across workers: queued (202) while it waits, then the one GTT it became;
    # never two GTTs for one key.
    assert all(len({trigger for _, trigger in outcomes if trigger}) <= 1 for outcomes in by_key.values()), dict(by_key)

    ids = {r.headers["X-Request-ID"] for _, _, r in answers}

    def audited() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(AuditRecord)
                                .where(AuditRecord.request_id.in_(ids))).scalar()

    # A place's audit row is committed just after its answer: wait for the last ones.
    until(lambda: audited() >= 200, "an audit record for every request")
    assert audited() == 200  # no audit record lost, none doubled
    engine.dispose()

    time.sleep(1.0)
    assert log.read_text().count("holds the lease") == 1  # one watcher among the workers
