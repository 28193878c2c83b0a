"""The order book's shared fetches (services/order_book.py), with real threads.

Fetches are held open on events, so "a caller arrives while a fetch is under way" is arranged,
not hoped for; the only waiting with a time limit is a guard against a hang."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from openalgo_gtt.domain.model import BrokerGtt, Quote, RuleState
from openalgo_gtt.brokers.errors import BrokerFailure
from openalgo_gtt.services.order_book import Coalescer, OrderBook
from openalgo_gtt.domain.encoding import dumps
from tests.waiting import HANG_GUARD, until



class HeldFetch:
    """A fetch whose n-th call (from 0) blocks until `open(n)`, then returns n or raises
    `errors[n]`."""

    def __init__(self, errors: dict[int, BaseException] | None = None):
        self.calls = 0
        self.errors = errors or {}
        self._gates: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def _gate(self, n: int) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(n, threading.Event())

    def __call__(self) -> int:
        with self._lock:
            n, self.calls = self.calls, self.calls + 1
        assert self._gate(n).wait(HANG_GUARD), f"fetch {n} was never let go"
        if n in self.errors:
            raise self.errors[n]
        return n

    def open(self, n: int) -> None:
        self._gate(n).set()

    def started(self, n: int) -> bool:
        with self._lock:
            return self.calls > n


class Caller(threading.Thread):
    def __init__(self, get):
        super().__init__(daemon=True)
        self._get = get
        self.result = self.error = None

    def run(self) -> None:
        try:
            self.result = self._get()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def outcome(self):
        self.join(HANG_GUARD)
        assert not self.is_alive(), "caller never returned"
        if self.error is not None:
            raise self.error
        return self.result


def start(get) -> Caller:
    caller = Caller(get)
    caller.start()
    return caller


def test_a_caller_arriving_during_a_fetch_gets_a_later_one():
    fetch = HeldFetch()
    shared = Coalescer(fetch)
    first = start(shared.get)
    until(lambda: fetch.started(0), "the first fetch began")
    second = start(shared.get)
    until(lambda: shared.waiting == 1, "the second caller waits")
    fetch.open(0)
    assert first.outcome() == 0
    until(lambda: fetch.started(1), "the second caller's own fetch began")
    fetch.open(1)
    assert second.outcome() == 1  # never the fetch that began before it arrived
    assert fetch.calls == 2


def test_callers_arriving_together_share_one_fetch():
    fetch = HeldFetch()
    shared = Coalescer(fetch)
    first = start(shared.get)
    until(lambda: fetch.started(0), "the first fetch began")
    others = [start(shared.get) for _ in range(20)]
    until(lambda: shared.waiting == 20, "all twenty wait")
    fetch.open(0)
    until(lambda: fetch.started(1), "the shared fetch began")
    fetch.open(1)
    assert first.outcome() == 0
    assert [caller.outcome() for caller in others] == [1] * 20
    assert fetch.calls == 2  # 21 callers, two fetches


def test_a_failed_shared_fetch_fails_every_caller_that_waited_for_it_and_only_them():
    boom = BrokerFailure("list failed", may_have_reached=False)
    fetch = HeldFetch(errors={1: boom})
    shared = Coalescer(fetch)
    first = start(shared.get)
    until(lambda: fetch.started(0), "the first fetch began")
    others = [start(shared.get) for _ in range(5)]
    until(lambda: shared.waiting == 5, "all five wait")
    fetch.open(0)
    until(lambda: fetch.started(1), "the shared fetch began")
    fetch.open(1)
    assert first.outcome() == 0
    for caller in others:
        with pytest.raises(BrokerFailure) as raised:
            caller.outcome()
        assert raised.value is boom
    fetch.open(2)
    assert shared.get() == 2  # nothing stuck: the next caller fetches afresh
    assert shared.waiting == 0


def test_a_failed_fetch_does_not_reach_callers_waiting_for_the_next():
    fetch = HeldFetch(errors={0: BrokerFailure("first failed", may_have_reached=False)})
    shared = Coalescer(fetch)
    first = start(shared.get)
    until(lambda: fetch.started(0), "the first fetch began")
    second = start(shared.get)
    until(lambda: shared.waiting == 1, "the second caller waits")
    fetch.open(0)
    with pytest.raises(BrokerFailure):
        first.outcome()
    fetch.open(1)
    assert second.outcome() == 1


def test_one_caller_after_another_fetches_each_time():
    fetch = HeldFetch()
    for n in range(3):
        fetch.open(n)
    shared = Coalescer(fetch)
    assert [shared.get() for _ in range(3)] == [0, 1, 2]


# -- the book on a broker and records held in memory ----------------------------------------

T0 = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
IDEA = "NSE_EQ|INE669E01016"


def gtt(gtt_id: str, status: str = "SCHEDULED", price: str = "9.55", minute: int = 0) -> BrokerGtt:
    rule = RuleState("ENTRY", "ABOVE", Decimal(price), "BUY", status)
    return BrokerGtt(gtt_id, "SINGLE", IDEA, "NSE_EQ", "IDEA", 1, "D", (rule,),
                     created_at=T0 + timedelta(minutes=minute), expires_at=T0 + timedelta(days=365))


class MemoryBroker:
    def __init__(self, gtts):
        self.gtts = list(gtts)
        self.list_calls = 0
        self.hold: HeldFetch | None = None  # when set, list calls wait on it

    def list_gtts(self):
        if self.hold is not None:
            self.hold()
        self.list_calls += 1
        return list(self.gtts)

    def quotes(self, keys):
        return {k: Quote(k, Decimal("9.50"), None) for k in keys}


class NoRecords:
    """The gateway placed none of them (they were placed elsewhere)."""

    def book_records(self, broker_ids):
        return {}, {}

    def by_trigger_ids(self, trigger_ids):
        return {}


class NoMaster:
    def by_key(self, instrument_key):
        return None


def book_of(broker) -> OrderBook:
    return OrderBook(broker, NoMaster(), NoRecords())


def test_live_triggers_by_default_every_one_with_include_all():
    broker = MemoryBroker([gtt("GTT-1", minute=1), gtt("GTT-2", "CANCELLED", minute=2), gtt("GTT-3", "FAILED", minute=3)])
    book = book_of(broker)
    assert book.view(False).trigger_ids == ("GTT-1",)
    # Every state: the active ones first, then newest first (issue 26, as the SDK documents it).
    assert book.view(True).trigger_ids == ("GTT-1", "GTT-3", "GTT-2")
    statuses = [entry["status"] for entry in book.view(True).entries]
    assert statuses == ["active", "rejected", "cancelled"]


def test_callers_sharing_a_fetch_each_get_their_variant():
    broker = MemoryBroker([gtt("GTT-1", minute=1), gtt("GTT-2", "CANCELLED", minute=2)])
    broker.hold = HeldFetch()
    book = book_of(broker)
    first = start(lambda: book.view(False))
    until(lambda: broker.hold.started(0), "the first fetch began")
    live = [start(lambda: book.view(False)) for _ in range(3)]
    every = [start(lambda: book.view(True)) for _ in range(3)]
    until(lambda: book.waiting == 6, "all six wait")
    broker.hold.open(0)
    broker.hold.open(1)
    assert first.outcome().trigger_ids == ("GTT-1",)
    assert {caller.outcome().trigger_ids for caller in live} == {("GTT-1",)}
    assert {caller.outcome().trigger_ids for caller in every} == {("GTT-1", "GTT-2")}
    assert broker.list_calls == 2
    shared = {id(caller.outcome()) for caller in every}
    assert len(shared) == 1  # one view (and one encoding) for all three


def test_the_view_json_is_the_entries_as_the_api_encodes_them():
    broker = MemoryBroker([gtt("GTT-1", minute=1, price="9.5"), gtt("GTT-2", "CANCELLED", minute=2, price="10")])
    view = book_of(broker).view(True)
    assert view.data_json == dumps(list(view.entries))
    assert view.entries[0]["trigger_prices"] == [Decimal("9.5")]  # exact until encoded
    assert book_of(MemoryBroker([])).view(False).data_json == "[]"


def test_an_entry_follows_its_gtt_from_one_fetch_to_the_next():
    broker = MemoryBroker([gtt("GTT-1", price="9.55")])
    book = book_of(broker)
    assert book.view(False).entries[0]["trigger_prices"] == [Decimal("9.55")]
    broker.gtts = [gtt("GTT-1", price="9.60")]  # modified at the broker
    assert book.view(False).entries[0]["trigger_prices"] == [Decimal("9.60")]
    broker.gtts = [gtt("GTT-1", "TRIGGERED", price="9.60")]
    assert book.view(False).entries == ()
    assert book.view(True).entries[0]["status"] == "triggered"
