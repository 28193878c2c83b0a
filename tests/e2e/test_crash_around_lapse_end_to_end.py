"""A crash (SIGKILL of `python run.py`) at any moment around a place's lapse loses nothing.

Through the real server, on one database across the restart. On the fake Upstox, a place's
broker call is held ("held": no answer, no work), so the place answers 504 and its attempt
SETTLES, then LAPSES at the watcher's first pass after SETTLE_SECONDS; Upstox makes the GTT
late, when the test releases it. The server is killed at a sweep of moments around the lapse,
restarted, and left to settle. Then the promises hold:

- every GTT live at Upstox is recorded by the gateway and counted once in the day's trade
  count; every other one was cancelled, by the gateway;
- the alert (one request) has exactly one live GTT;
- a retry of the alert is answered consistently: placed afresh (and the late GTT cancelled as a
  duplicate), or answered with the late GTT as a duplicate; never a second live GTT.

The sandbox creates its GTTs synchronously, so its crash is between the broker call and the
place's record (the unit of work just after the answer).

A restart lapses the dead server's watcher lease at once (as LEASE_TTL would 15 s after the
kill), so that each test takes a few seconds.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import pytest
import requests
from sqlalchemy import create_engine, func, select, text, update

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.store.models import AuditRecord, GttOrder, Lease, PlaceAttemptRow, RequestRecord
from openalgo_gtt.store.sandbox_models import SandboxGtt
from tests.waiting import until

IDEA = "NSE_EQ|INE669E01016"
SINGLE = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "SINGLE",
          "product": "CNC", "triggerprice_tg": 9.61}
BRACKET = {"exchange": "NSE", "symbol": "IDEA", "action": "BUY", "quantity": 1, "trigger_type": "BRACKET",
           "product": "CNC", "entry_mode": "manual", "entry_value": 9.80, "target_type": "manual",
           "target_value": 10.50, "sl_type": "manual", "sl_value": 9.60}
TIMEOUT = 0.5  # UPSTOX_TIMEOUT: a held place answers 504 this long after it began
WINDOW = 1.0  # SETTLE_SECONDS
POLL = 0.2  # OCO_POLL_SECONDS: the lapse comes at the first pass after the window
OPEN = ("sending", "settling", "lapsed")  # states the broker may still act on unseen
LIVE = ("SCHEDULED", "PENDING", "OPEN", "INACTIVE")


class Background(threading.Thread):
    """A request sent while the test waits for its moment: the server may die under it."""

    def __init__(self, send: Callable[[], requests.Response]):
        super().__init__(daemon=True)
        self._send = send
        self.answer: requests.Response | None = None

    def run(self) -> None:
        try:
            self.answer = self._send()
        except requests.RequestException:
            pass  # the server was killed under it


class Gateway:
    """The server under test, the broker it drives and its database, as the test sees them."""

    def __init__(self, server, key: str, fake=None):
        self.server, self.key, self.fake = server, key, fake
        self.engine = create_engine(server.env["DATABASE_URL"])

    def post(self, path: str, **body) -> requests.Response:
        return requests.post(f"{self.server.url}/api/v1/{path}", json={"apikey": self.key, **body}, timeout=30)

    def place(self, order: dict = SINGLE) -> requests.Response:
        return self.post("placegtt", **order)

    def place_in_background(self, order: dict = SINGLE) -> Background:
        sender = Background(lambda: self.place(order))
        sender.start()
        return sender

    def trade_count(self) -> int:
        return requests.get(f"{self.server.url}/api/health", timeout=5).json()["today_trade_count"]

    def book(self) -> list[str]:
        return [o["trigger_id"] for o in self.post("gttorderbook").json()["data"]]

    def states(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(PlaceAttemptRow.state).order_by(PlaceAttemptRow.id)).scalars())

    def request_ids(self) -> list[str]:
        """The request of each place attempt, oldest first."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(PlaceAttemptRow.request_id).order_by(PlaceAttemptRow.id)).scalars())

    def made(self) -> int:
        """GTTs the sandbox broker holds."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(SandboxGtt)).scalar()

    def records(self) -> list[str]:
        """The states of the request records (pending, done, fault)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(RequestRecord.state).order_by(RequestRecord.id)).scalars())

    def settled(self) -> bool:
        states = self.states()
        return bool(states) and not set(states) & set(OPEN)

    def recorded(self) -> dict[str, tuple[str, str]]:
        """broker GTT id -> (trigger id, status), for every GTT the gateway knows."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(GttOrder.trigger_id, GttOrder.broker_ids, GttOrder.status)).all()
        return {broker_id: (trigger_id, status) for trigger_id, broker_ids, status in rows for broker_id in broker_ids}

    def kill(self) -> None:
        self.server.stop(kill=True)  # SIGKILL: nothing runs on the way out

    def restart(self) -> None:
        """Start again on the same database; it reconciles before it serves. The dead server's
        watcher lease is lapsed first, as LEASE_TTL (15 s) after the kill would lapse it, so the
        new server's watcher passes begin at once instead of 15 s later."""
        with self.engine.begin() as conn:
            conn.execute(update(Lease).where(Lease.name == "gtt-watcher")
                         .values(expires_at=utcnow() - timedelta(seconds=1)))
        self.server.start()

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def gateways():
    made: list[Gateway] = []
    yield made
    for gateway in made:
        gateway.close()


def upstox(server_factory, fake, gateways, **env) -> Gateway:
    server = server_factory(**{"ACCESS_TOKEN": fake.token, "UPSTOX_API_URL": fake.url,
                               "UPSTOX_TIMEOUT": str(TIMEOUT), "SETTLE_SECONDS": str(WINDOW),
                               "OCO_POLL_SECONDS": str(POLL), "DAILY_TRADE_LIMIT": "10", **env})
    key = server.cli("apikey", "create", "crash").stdout.strip().splitlines()[-1]
    gateway = Gateway(server.start(), key, fake)
    gateways.append(gateway)
    return gateway


def live(fake) -> set[str]:
    return {g["gtt_order_id"] for g in fake.gtts() if any(r["status"] in LIVE for r in g["rules"])}


def assert_nothing_lost(gateway: Gateway) -> str:
    """The promises, once every attempt is final; returns the alert's one live GTT."""
    fake = gateway.fake
    gtts, at_broker = fake.gtts(), live(fake)
    recorded = gateway.recorded()
    assert at_broker <= recorded.keys(), f"live at Upstox, unknown to the gateway: {at_broker - recorded.keys()}"
    assert {b for b, (_, status) in recorded.items() if status == "active"} == at_broker
    assert len(at_broker) == 1, f"the alert has {len(at_broker)} live GTTs"  # one alert, one GTT
    assert gateway.trade_count() == 1  # counted once
    # Every other GTT was cancelled, and by the gateway (nothing else cancels here).
    assert all(r["status"] == "CANCELLED" for g in gtts if g["gtt_order_id"] not in at_broker for r in g["rules"])
    assert len(fake.calls_to("gtt.cancel")) == len(gtts) - 1
    (gtt_id,) = at_broker
    assert gateway.book() == [recorded[gtt_id][0]]
    return gtt_id


def assert_a_retry_gets(gateway: Gateway, gtt_id: str, order: dict = SINGLE) -> None:
    places = len(gateway.fake.calls_to("gtt.place"))
    retry = gateway.place(order)  # TradingView re-sends the alert
    assert retry.status_code == 200, retry.text
    assert retry.json()["duplicate"] is True and retry.json()["trigger_id"] == gtt_id
    assert len(gateway.fake.calls_to("gtt.place")) == places  # answered without reaching Upstox
    assert gateway.trade_count() == 1


# -- the moments of the kill, from the place's start ------------------------------------------


@dataclass(frozen=True)
class Moment:
    name: str
    wait: Callable[[Gateway, Background, float], None]  # until the moment (place sent at t0)
    leaves: str | None = None  # the attempt's state the kill must leave, when the moment is one


def at(seconds: float) -> Callable[[Gateway, Background, float], None]:
    """A fixed offset from the place's start: the sweep across the window's end and the lapse."""
    return lambda gateway, sender, t0: time.sleep(max(0.0, t0 + seconds - time.monotonic()))


def in_the_broker_call(gateway: Gateway, sender: Background, t0: float) -> None:
    until(lambda: gateway.fake.held == 1, "Upstox to hold the place")


def answered(gateway: Gateway, sender: Background, t0: float) -> None:
    sender.join(10)
    assert sender.answer is not None and sender.answer.status_code == 504


MOMENTS = [
    Moment("sending", in_the_broker_call, "sending"),  # the broker call in flight
    Moment("settling", answered, "settling"),  # the 504 just sent, the window still open
    Moment("0.8s-before-window-end", at(WINDOW - 0.2)),
    Moment("1.0s-window-end", at(WINDOW)),
    Moment("1.1s-watcher-pass", at(WINDOW + POLL / 2)),
    Moment("1.3s-just-after", at(WINDOW + POLL * 1.5)),
    Moment("lapsed", lambda g, s, t0: until(lambda: g.states() == ["lapsed"], "the lapse"), "lapsed"),
    Moment("1.8s-lapsed-a-while", at(WINDOW + POLL * 4)),
]


def place_held_and_kill(gateway: Gateway, moment: Moment, order: dict = SINGLE) -> None:
    """A place Upstox holds (no answer, no work yet), the server killed at `moment`."""
    gateway.fake.inject("gtt.place", "held")
    t0 = time.monotonic()
    sender = gateway.place_in_background(order)
    moment.wait(gateway, sender, t0)
    gateway.kill()
    sender.join(10)
    if moment.leaves is not None:
        assert gateway.states() == [moment.leaves]
    if sender.answer is not None:  # answered before the kill: the outcome is unknown, never a failure
        assert sender.answer.status_code == 504 and sender.answer.json()["outcome_unknown"] is True
    assert gateway.fake.gtts() == []  # Upstox has done nothing yet


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.name for m in MOMENTS])
def test_a_gtt_upstox_makes_while_the_gateway_is_down_is_recorded_and_counted_once(
        server_factory, fake_upstox, gateways, moment):
    gateway = upstox(server_factory, fake_upstox, gateways)
    place_held_and_kill(gateway, moment)
    assert fake_upstox.release_held() == 1  # Upstox finishes the place while the gateway is down
    until(fake_upstox.gtts, "Upstox to make the GTT")
    gateway.restart()
    until(gateway.settled, "every attempt to be settled")
    gtt_id = assert_nothing_lost(gateway)
    assert gateway.states() in (["recorded"], ["found_late"])  # found before, or after, the lapse
    assert_a_retry_gets(gateway, gtt_id)


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.name for m in MOMENTS])
def test_a_retry_after_the_lapse_places_afresh_and_the_later_gtt_is_cancelled(
        server_factory, fake_upstox, gateways, moment):
    gateway = upstox(server_factory, fake_upstox, gateways)
    place_held_and_kill(gateway, moment)
    gateway.restart()
    until(lambda: gateway.states() == ["lapsed"], "the place to lapse")
    assert gateway.trade_count() == 0  # its trade given back
    fresh = gateway.place()
    assert fresh.status_code == 200 and "duplicate" not in fresh.json(), fresh.text
    assert fake_upstox.release_held() == 1  # only now does Upstox make the first place's GTT
    until(lambda: len(fake_upstox.gtts()) == 2, "Upstox to make the late GTT")
    until(gateway.settled, "the late GTT to be settled")
    gtt_id = assert_nothing_lost(gateway)
    assert gtt_id == fresh.json()["trigger_id"] and gateway.states() == ["cancelled_late", "recorded"]
    assert_a_retry_gets(gateway, gtt_id)


@pytest.mark.parametrize("moment", [m for m in MOMENTS if m.leaves], ids=[m.name for m in MOMENTS if m.leaves])
def test_a_gtt_upstox_makes_after_the_restart_lapsed_the_place_is_found_late(
        server_factory, fake_upstox, gateways, moment):
    gateway = upstox(server_factory, fake_upstox, gateways)
    place_held_and_kill(gateway, moment)
    gateway.restart()
    until(lambda: gateway.states() == ["lapsed"], "the place to lapse")
    assert fake_upstox.release_held() == 1
    until(gateway.settled, "the late GTT to be counted")
    gtt_id = assert_nothing_lost(gateway)
    assert gateway.states() == ["found_late"]
    assert_a_retry_gets(gateway, gtt_id)


# -- a retry of the alert, killed in flight -----------------------------------------------------


def test_a_retry_killed_as_its_wait_ends_leaves_the_late_gtt_found(
        server_factory, fake_upstox, gateways):
    """TradingView re-sends the 504 at once; the retry finds nothing yet (the place settles), and
    the server dies as its wait ends and it looks again, holding the request. Restarted, the place
    lapses; the GTT Upstox makes after that is still the request's, recorded and counted.

    The kill is made by the fake as the second look reaches it, not by the test after a guessed
    moment: on a busy machine the retry's whole wait could pass before the test's kill landed."""
    # A quiet watcher (no list call of its own), a window the retry's second look fits in, and a
    # caller's budget that leaves time to wait and look again (with less, the retry answers 503
    # after one look: services/place.py `_settle_earlier`).
    gateway = upstox(server_factory, fake_upstox, gateways, OCO_POLL_SECONDS="600", SETTLE_SECONDS="6",
                     UPSTOX_TIMEOUT="2")
    fake_upstox.inject("gtt.place", "held")
    first = gateway.place()
    assert first.status_code == 504 and gateway.states() == ["settling"]
    looks = []

    def kill_at_the_second_look(route):
        if route == "gtt.details":
            looks.append(route)
            if len(looks) == 2:  # the retry's wait is over: it looks again, and dies doing so
                gateway.kill()
                return "hang", False, 10.0
        return None

    fake_upstox.chaos = kill_at_the_second_look
    retry = gateway.place_in_background()
    retry.join(30)
    fake_upstox.chaos = None
    assert len(looks) == 2 and retry.answer is None and gateway.states() == ["settling"]
    gateway.server.env["OCO_POLL_SECONDS"] = str(POLL)
    gateway.restart()
    until(lambda: gateway.states() == ["lapsed"], "the place to lapse")
    assert fake_upstox.release_held() == 1  # Upstox makes it after the lapse
    until(gateway.settled, "the late GTT to be counted")
    gtt_id = assert_nothing_lost(gateway)
    assert gateway.states() == ["found_late"]
    assert_a_retry_gets(gateway, gtt_id)


@pytest.mark.parametrize("keyed", [True, False], ids=["idempotency-key", "same-body"])
def test_a_retry_killed_while_planning_after_the_lapse_leaves_the_late_gtt_found(
        server_factory, fake_upstox, gateways, keyed):
    """The place lapsed; its retry takes the request over and plans afresh (a bracket asks Upstox
    for a quote), and the server dies there, holding the request, before the retry's own attempt
    begins. The GTT Upstox then makes late is still the request's: recorded and counted.

    A keyed retry takes the request over before it plans; a retry known by its body plans once,
    finds the request taken when it begins, takes it over and plans again: killed in that
    second plan."""
    gateway = upstox(server_factory, fake_upstox, gateways)
    order = {**BRACKET, "idempotency_key": "alert-7"} if keyed else BRACKET
    fake_upstox.inject("gtt.place", "held")
    assert gateway.place(order).status_code == 504
    until(lambda: gateway.states() == ["lapsed"], "the place to lapse")
    quotes = len(fake_upstox.calls_to("quote.ohlc"))
    hang_at = 1 if keyed else 2  # the retry's quote call made while it holds the request
    seen = []

    def hang_the_quote(route):
        if route == "quote.ohlc":
            seen.append(route)
            if len(seen) == hang_at:
                return "hang", False, 10.0
        return None

    fake_upstox.chaos = hang_the_quote
    retry = gateway.place_in_background(order)
    until(lambda: len(fake_upstox.calls_to("quote.ohlc")) == quotes + hang_at, "the retry to plan")
    gateway.kill()
    retry.join(10)
    fake_upstox.chaos = None
    assert retry.answer is None and gateway.states() == ["lapsed"] and gateway.records() == ["pending"]
    assert fake_upstox.release_held() == 1  # Upstox makes it while the gateway is down
    until(fake_upstox.gtts, "Upstox to make the GTT")
    gateway.restart()
    until(gateway.settled, "the late GTT to be counted")
    gtt_id = assert_nothing_lost(gateway)
    assert gateway.states() == ["found_late"]
    assert_a_retry_gets(gateway, gtt_id, order)


# -- the sandbox: killed between the broker call and the record ---------------------------------


SANDBOX_ORDERS = {
    "single": ({"IDEA": 9.50}, {**SINGLE, "triggerprice_tg": 9.55}, ("IDEA", 9.56)),
    "oco": ({"INFY": 1550}, {"exchange": "NSE", "symbol": "INFY", "action": "SELL", "quantity": 5,
                              "trigger_type": "OCO", "product": "CNC", "triggerprice_sl": 1480,
                              "triggerprice_tg": 1620, "stoploss": 1478, "target": 1622}, ("INFY", 1475)),
}


@contextmanager
def the_record_held(database_url: str):
    """The place's record (its unit of work just after the broker's answer, which inserts the
    GTT's row, before the caller's answer) cannot complete while this holds. On PostgreSQL it waits on a lock, mid-transaction, and the
    kill lands there; SQLite cannot make a writer wait for one table, so there it fails, as a
    transaction the kill cut short, leaving what a kill leaves: nothing of it."""
    engine = create_engine(database_url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("LOCK TABLE gtt_orders IN SHARE MODE"))  # blocks inserts, not reads
                yield
                conn.rollback()
        else:
            with engine.begin() as conn:
                conn.execute(text("CREATE TRIGGER held_by_the_test BEFORE INSERT ON gtt_orders "
                                  "BEGIN SELECT RAISE(ABORT, 'held by the test'); END"))
            try:
                yield
            finally:
                with engine.begin() as conn:
                    conn.execute(text("DROP TRIGGER held_by_the_test"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("kill", ["record-held", "at-the-answer"])
@pytest.mark.parametrize("kind", list(SANDBOX_ORDERS))
def test_a_sandbox_place_killed_before_its_record_is_recorded_and_counted_once(
        server_factory, database_url, gateways, kind, kill):
    prices, order, crossing = SANDBOX_ORDERS[kind]
    server = server_factory(OCO_POLL_SECONDS=str(POLL))  # no token: the sandbox broker
    key = server.cli("apikey", "create", "crash").stdout.strip().splitlines()[-1]
    gateway = Gateway(server.start(), key)
    gateways.append(gateway)
    for symbol, ltp in prices.items():
        assert gateway.post("sandbox/ticks", ticks=[{"symbol": symbol, "exchange": "NSE", "ltp": ltp}]).ok
    legs = 2 if kind == "oco" else 1
    if kill == "record-held":
        with the_record_held(database_url):
            placing = gateway.place_in_background(order)
            until(lambda: gateway.made() == legs, "the sandbox to make the GTT")
            placing.join(10)  # SQLite: the record failed; PostgreSQL: it waits on the lock
            if placing.answer is not None:  # never a trigger id the store does not hold
                assert placing.answer.status_code == 503 and placing.answer.json()["outcome_unknown"] is True
            gateway.kill()  # the place is not recorded
            assert gateway.recorded() == {} and gateway.states() == ["sending"]
        trigger_id = None
    else:  # killed right after the answer: the record was written before it
        placed = gateway.place(order)
        gateway.kill()
        assert placed.status_code == 200, placed.text
        trigger_id = placed.json()["trigger_id"]
    request_id = gateway.request_ids()[0]
    gateway.restart()
    until(gateway.settled, "the place to be recorded")
    with gateway.engine.connect() as conn:
        made = gateway.made()
        audited = conn.execute(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.request_id == request_id)).scalar()
    trigger_id = trigger_id or gateway.book()[0]
    assert made == legs and len(gateway.recorded()) == legs  # every GTT made is known
    assert gateway.states() == ["recorded"] and gateway.book() == [trigger_id]
    assert gateway.trade_count() == 1 and audited == 1
    retry = gateway.place(order)
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert retry.json()["trigger_id"] == trigger_id and gateway.trade_count() == 1
    symbol, ltp = crossing
    fired = gateway.post("sandbox/ticks", ticks=[{"symbol": symbol, "exchange": "NSE", "ltp": ltp}]).json()["fired"]
    assert len(fired) == 1  # it fires, once
    with gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SandboxGtt)).scalar() == legs  # nothing placed again
