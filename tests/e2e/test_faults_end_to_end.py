"""Every broker fault, on every operation, through the real server: a clear JSON answer with the
right status in time, exactly one audit record, no trade counted for a failure, and the next
request works. Then a SIGKILL in the middle of a burst of places."""
from __future__ import annotations

import itertools
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, func, select

from openalgo_gtt.store.models import AuditRecord, GttOrder
from tests.waiting import until

TIMEOUT = 1.0
MARGIN = TIMEOUT + 1.5  # a trickled body may take up to twice the timeout before it is cut off

# fault -> HTTP status the caller gets, per operation (None: the operation still succeeds)
FAULTS = {
    "hang": {"place": 504, "modify": 504, "cancel": 504, "book": 504},
    "refuse": {"place": 502, "modify": 502, "cancel": 502, "book": None},  # reads retry
    "reset": {"place": 502, "modify": 502, "cancel": 502, "book": None},
    "500": {"place": 502, "modify": 502, "cancel": 502, "book": None},
    "502_html": {"place": 502, "modify": 502, "cancel": 502, "book": None},
    "429": {"place": None, "modify": 429, "cancel": 429, "book": None},  # a place is retried
    "401": {"place": 502, "modify": 502, "cancel": 502, "book": 502},
    "empty": {"place": 502, "modify": 502, "cancel": 502, "book": 502},
    "truncated": {"place": 502, "modify": 502, "cancel": 502, "book": 502},
    "missing_fields": {"place": 502, "modify": 502, "cancel": 502, "book": 502},
    "trickle": {"place": 504, "modify": 504, "cancel": 504, "book": 504},
}
ROUTE = {"place": "gtt.place", "modify": "gtt.modify", "cancel": "gtt.cancel", "book": "gtt.details"}
prices = (f"{9 + n / 100:.2f}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two gateways, each on its own fake Upstox: one whose watcher polls fast (it settles lost places within a
    second), and a quiet one for the order book, whose faults the watcher's own list calls would
    otherwise consume."""
    from tests.e2e.server import ServerProcess
    from tests.fakes.fake_upstox import FakeUpstox

    started = {}
    for name, poll in (("polling", "0.3"), ("quiet", "600")):
        fake = FakeUpstox(token="fault-token").start()  # each its own: no shared fault queue
        fake.set_price("NSE_EQ|INE669E01016", "IDEA", "NSE_EQ", "9.50", open="10.00")
        workdir = tmp_path_factory.mktemp(name)
        server = ServerProcess(workdir, f"sqlite:///{workdir / 'faults.db'}", ACCESS_TOKEN=fake.token,
                               UPSTOX_API_URL=fake.url, UPSTOX_TIMEOUT=str(TIMEOUT), DAILY_TRADE_LIMIT="100000",
                               # An ambiguous place settles for this long before its trade is given
                               # back (the settling tests cover the 10 s default).
                               OCO_POLL_SECONDS=poll, SETTLE_SECONDS="1",
                               # These servers live for the whole module, so at Upstox's 10 a
                               # second the order calls of one test would crowd the 1 s budget of
                               # the next (a 429 from the pacer: the outcome then depends on the
                               # order the tests ran in). Pacing has tests of its own (as in
                               # tests/conftest.py's upstox_gateway).
                               ORDER_RATE_LIMITS="1000/second")
        key = server.cli("apikey", "create", "faults").stdout.strip().splitlines()[-1]
        started[name] = (server.start(), fake, key, create_engine(f"sqlite:///{workdir / 'faults.db'}"))
    yield started
    for server, fake, *_ in started.values():
        server.stop()
        fake.stop()


@pytest.fixture
def gateway_server(servers, request):
    return servers["quiet" if request.node.callspec.params["op"] == "book" else "polling"]


def call(server, key, op, trigger_id=None):
    body = {"apikey": key}
    if op in ("place", "modify"):
        body.update(exchange="NSE", symbol="IDEA", action="BUY", quantity=1, trigger_type="SINGLE",
                    triggerprice_tg=next(prices))
    if op in ("modify", "cancel"):
        body["trigger_id"] = trigger_id
    path = {"place": "placegtt", "modify": "modifygtt", "cancel": "cancelgtt", "book": "gttorderbook"}[op]
    return requests.post(f"{server.url}/api/v1/{path}", json=body, timeout=30)


def trade_count(server):
    return requests.get(f"{server.url}/api/health", timeout=5).json()["today_trade_count"]


def settled_count(server, expected, seconds=3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and trade_count(server) != expected:
        time.sleep(0.1)
    return trade_count(server)


# One worker runs the whole matrix: its two servers (the module's fixture) start once, not once a worker.
@pytest.mark.xdist_group("fault-matrix")
@pytest.mark.parametrize("op", ["place", "modify", "cancel", "book"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_matrix(gateway_server, fault, op):
    server, fake, key, engine = gateway_server
    trigger_id = call(server, key, "place").json()["trigger_id"] if op in ("modify", "cancel") else None
    gtts_before, count_before = len(fake.gtts()), trade_count(server)
    fake.inject(ROUTE[op], fault, seconds=0.2 if fault == "trickle" else 3)

    started = time.monotonic()
    answer = call(server, key, op, trigger_id)
    elapsed = time.monotonic() - started
    expected = FAULTS[fault][op]

    assert elapsed < TIMEOUT + MARGIN + (2.5 if fault == "429" else 0)
    body = answer.json()  # always JSON
    if expected is None:
        assert answer.status_code == 200, body
    else:
        assert answer.status_code == expected, body
        assert body["status"] == "error" and body["message"]

    def audit_rows() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(AuditRecord)
                                .where(AuditRecord.request_id == answer.headers["X-Request-ID"])).scalar()

    until(lambda: audit_rows() > 0, "the request's audit row")  # a place writes it just after answering
    assert audit_rows() == 1
    if op == "place":
        placed = len(fake.gtts()) - gtts_before  # what really exists at the broker
        assert settled_count(server, count_before + placed) == count_before + placed
        if placed:  # and the gateway knows it (the watcher records a lost answer's GTT shortly)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    known = conn.execute(select(func.count()).select_from(GttOrder)).scalar()
                if known >= len(fake.gtts()):
                    break
                time.sleep(0.1)
            assert known >= len(fake.gtts())
    fake.clear_faults()
    assert call(server, key, op, call(server, key, "place").json()["trigger_id"]
                if op in ("modify", "cancel") else None).status_code == 200  # the next one works


def test_sigkill_in_the_middle_of_a_burst(server_factory, fake_upstox):
    fake_upstox.latency = 0.15
    server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, UPSTOX_TIMEOUT="2",
                            DAILY_TRADE_LIMIT="1000", OCO_POLL_SECONDS="0.5", SETTLE_SECONDS="1")
    key = server.cli("apikey", "create", "burst").stdout.strip().splitlines()[-1]
    server.start()
    requests.post(f"{server.url}/api/v1/ping", json={"apikey": key}, timeout=5)  # a running server knows the key

    def place(n):
        try:
            requests.post(f"{server.url}/api/v1/placegtt", timeout=10, json={
                "apikey": key, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1,
                "trigger_type": "SINGLE", "triggerprice_tg": f"{9.6 + n / 100:.2f}"})
        except requests.RequestException:
            pass  # the server died under it

    threads = [threading.Thread(target=place, args=(n,)) for n in range(30)]
    [t.start() for t in threads]
    time.sleep(0.6)
    server.stop(kill=True)
    [t.join() for t in threads]
    at_broker = {g["gtt_order_id"] for g in fake_upstox.gtts()}
    assert 0 < len(at_broker) < 30  # killed mid-burst

    server.start()  # reconciles before it serves
    with create_engine(server.env["DATABASE_URL"]).connect() as conn:
        known = {leg for row in conn.execute(select(GttOrder.broker_ids)) for leg in row[0]}
    assert at_broker <= known
    # The places the kill cut short settle: once their window has passed, their trades are back.
    until(lambda: trade_count(server) == len(at_broker), "the trade count to equal the GTTs at the broker")


def test_a_burst_against_a_hung_upstox_is_answered_within_the_timeout(server_factory, fake_upstox):
    """UPSTOX_TIMEOUT bounds a request's whole time at Upstox (pacing wait, quotes, the place and
    any look-up), not each call: a burst of 15 places, 5 of them queued by the pacer, all hear
    within it (plus the gateway's own few ms), never after two or three timeouts. The five the
    pacer cannot send in time are queued (202) at once. (The server has a thread for each: a
    burst beyond SERVER_THREADS first waits for a thread.)"""
    server = server_factory(ACCESS_TOKEN=fake_upstox.token, UPSTOX_API_URL=fake_upstox.url, UPSTOX_TIMEOUT="2",
                            DAILY_TRADE_LIMIT="1000", OCO_POLL_SECONDS="600", SERVER_THREADS="16")
    key = server.cli("apikey", "create", "burst").stdout.strip().splitlines()[-1]
    server.start()
    requests.post(f"{server.url}/api/v1/ping", json={"apikey": key}, timeout=5)  # the key is verified and cached
    fake_upstox.inject("gtt.place", "hang", times=None, seconds=6)
    elapsed, statuses = [], []

    def place(n):
        started = time.monotonic()
        answer = requests.post(f"{server.url}/api/v1/placegtt", timeout=30, json={
            "apikey": key, "exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1,
            "trigger_type": "SINGLE", "triggerprice_tg": f"{9.6 + n / 100:.2f}"})
        elapsed.append(time.monotonic() - started)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=place, args=(n,)) for n in range(15)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert set(statuses) == {202, 504}  # sent and timed out, or queued: never a 429
    assert max(elapsed) < 2.0 + 1.0  # without the shared budget: 3.3 s and more
