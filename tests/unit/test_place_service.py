"""The place, modify and cancel use cases and the recovery, driven directly: an in-memory broker,
the real store on a fresh database, and no web framework. Exactly-once is the subject: a
duplicate, an answer lost after the broker did the work, and a crash between intent and record."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from openalgo_gtt.brokers.errors import BrokerTimeout, InputRejected
from openalgo_gtt.domain.intent import PlaceIntent
from openalgo_gtt.domain.model import CANCELLED, TriggerStatus
from openalgo_gtt.domain.strategy import DEFAULT_PCTS
from openalgo_gtt.domain.symbols import InstrumentInfo
from openalgo_gtt.domain.clock import ManualClock
from openalgo_gtt.services.attempts import AttemptDriver
from openalgo_gtt.services.audit import AuditTrail
from openalgo_gtt.services.fills import OrderFills
from openalgo_gtt.services.finder import BrokerFinder
from openalgo_gtt.services.watcher import OneListing
from openalgo_gtt.services.context import RequestContext
from openalgo_gtt.services.exactly_once import ExactlyOnce
from openalgo_gtt.services.gtt import GttService
from openalgo_gtt.domain.notifications import DEFAULT_EVENTS
from openalgo_gtt.services.notifications import Notifications
from openalgo_gtt.services.place_queue import PlaceQueue
from openalgo_gtt.services.place_sender import PlaceSender
from openalgo_gtt.services.place import PlaceGtt, Settling
from openalgo_gtt.services.planner import Order, Planner
from openalgo_gtt.services.trade_limit import DailyTradeLimit
from openalgo_gtt.services.watcher import LEASE_TTL, GttWatcher
from openalgo_gtt.store.db import make_session_factory
from openalgo_gtt.store.instruments import InstrumentIndex
from openalgo_gtt.store.leases import DatabaseLease
from openalgo_gtt.store.models import AuditRecord, PlaceAttemptRow, RequestRecord
from openalgo_gtt.store.unit_of_work import Store
from tests.fakes.memory_broker import MemoryBroker
from tests.waiting import until

IDEA = InstrumentInfo("NSE_EQ|INE669E01016", "NSE_EQ", "NSE", "IDEA", "IDEA", "Vodafone Idea", "EQ", 1,
                      Decimal("0.01"), None, None, "INE669E01016")


class Services:
    """The use cases wired as the gateway wires them, on a clock the test moves."""

    def __init__(self, engine, *, stale_after: timedelta = timedelta(minutes=5), limit: int = 5):
        self.clock = ManualClock(datetime.now(timezone.utc))
        self.broker = MemoryBroker(self.clock)
        holder = f"test:{uuid.uuid4().hex[:6]}"
        self.store = Store(engine, make_session_factory(engine), holder=holder, clock=self.clock)
        self.audit = AuditTrail(self.store.audit)
        self.notifications = Notifications(self.store.outbox, ("json://127.0.0.1:9/trader",), DEFAULT_EVENTS,
                                           "p" * 40)
        self.limit = DailyTradeLimit(self.store.trades, limit, notifications=self.notifications)
        self.once = ExactlyOnce(self.store, self.audit, dedupe_window_seconds=60, stale_after=stale_after,
                                first_may_run=timedelta(seconds=6))
        planner = Planner(self.broker, InstrumentIndex.from_instruments([IDEA]), DEFAULT_PCTS)
        self.attempts = AttemptDriver(self.store, BrokerFinder(self.broker, self.store, stale_after), self.limit,
                                      self.notifications, settle_window=timedelta(seconds=10),
                                      stale_after=stale_after)
        sender = PlaceSender(self.broker, self.attempts, lookup_budget=5.0)
        self.queue = PlaceQueue(self.attempts, sender, self.broker, holding=lambda: True)
        self.place = PlaceGtt(self.broker, planner, self.limit, self.once, self.attempts, sender, self.queue)
        lease = DatabaseLease(engine, "gtt-watcher", holder, ttl=LEASE_TTL)
        watcher = GttWatcher(self.broker, self.store, lease, 2.0, settle_attempts=self.attempts.settle_all,
                             notifications=self.notifications, clock=self.clock,
                             fills=OrderFills(self.broker, self.store, self.notifications, self.clock))
        self.gtts = GttService(self.broker, InstrumentIndex.from_instruments([IDEA]), self.store.orders, planner,
                               self.once, store=self.store, watcher=watcher,
                               notifications=self.notifications, staged=None)

    def settle(self) -> list[str]:
        """One watcher pass over the place attempts (recovery and the late pass)."""
        return self.attempts.settle_all(OneListing(self.broker))

    def states(self) -> list[str]:
        with self.store.engine.connect() as conn:
            return [str(s) for s in conn.execute(select(PlaceAttemptRow.state).order_by(PlaceAttemptRow.id)).scalars()]

    def pass_settling_window(self) -> None:
        """The settling window passes (nothing sleeps: the clock moves)."""
        self.clock.advance(self.attempts.settle_window.total_seconds() + 1)

    def context(self) -> RequestContext:
        return RequestContext(request_id=str(uuid.uuid4()), method="POST", endpoint="/api/v1/placegtt",
                              client_addr="127.0.0.1", api_key_name="test")

    def place_single(self, trigger: str = "9.61", *, key: str | None = None, stops_before_record: bool = False):
        """Place a SINGLE; `stops_before_record` is a process that stops once the broker has
        answered, before the attempt is RECORDED: the caller hears nothing (answer and status
        None), and the GTT is live at the broker."""
        ctx = self.context()
        order = Order("IDEA", "NSE", PlaceIntent(trigger_type="SINGLE", action="BUY", product="CNC", quantity=10,
                                                 triggerprice_tg=Decimal(trigger)))
        body = {"symbol": "IDEA", "exchange": "NSE", "triggerprice_tg": trigger}
        if not stops_before_record:
            answer, status = self.place(ctx, order, body, key)
            return answer, status, ctx
        before = {gtt.gtt_id for gtt in self.broker.live()}
        recorded = self.attempts.recorded
        self.attempts.recorded = _stop_the_process
        try:
            with pytest.raises(ProcessStopped):
                self.place(ctx, order, body, key)
        finally:
            self.attempts.recorded = recorded
        (self.unrecorded_gtt_id,) = {gtt.gtt_id for gtt in self.broker.live()} - before
        return None, None, ctx

    def count(self, model) -> int:
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar()


class ProcessStopped(BaseException):
    """The process stops (a kill): nothing after it runs."""


def _stop_the_process(*_args, **_kwargs):
    raise ProcessStopped()


@pytest.fixture
def services(db_engine):
    return Services(db_engine)


def test_a_place_reaches_the_broker_counts_a_trade_and_is_recorded_with_its_audit_row(services):
    answer, status, ctx = services.place_single()
    assert status == 200 and answer["status"] == "success" and answer["trade_count"] == 1
    assert answer["entry"] == Decimal("9.61")
    assert [gtt.gtt_id for gtt in services.broker.live()] == [answer["trigger_id"]]
    recorded = services.store.orders.get(answer["trigger_id"])
    assert recorded is not None and recorded.request_id == ctx.request_id and recorded.api_key_name == "test"
    assert services.store.audit.exists(ctx.request_id) and services.count(AuditRecord) == 1


def test_a_duplicate_gets_the_first_answer_and_never_reaches_the_broker(services):
    first, _, first_ctx = services.place_single()
    again, status, _ = services.place_single()
    assert status == 200 and again["duplicate"] is True
    assert again["trigger_id"] == first["trigger_id"] and again["original_request_id"] == first_ctx.request_id
    assert services.broker.place_calls == 1 and services.limit.today_count() == 1


def test_an_answer_lost_after_the_work_is_found_at_the_broker_not_placed_again(services):
    services.broker.next_place_faults = ["lost"]
    answer, status, _ = services.place_single()
    assert status == 200 and services.broker.place_calls == 1
    assert [gtt.gtt_id for gtt in services.broker.live()] == [answer["trigger_id"]]
    assert services.limit.today_count() == 1


def test_an_unknown_outcome_settles_a_retry_within_the_window_is_not_placed_and_after_it_is(services):
    services.broker.next_place_faults = ["before"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    assert services.limit.today_count() == 1  # kept: the broker may still create it
    with pytest.raises(Settling) as settling:  # TradingView's retry a second later
        services.place_single()
    assert settling.value.status == 503 and 1 <= settling.value.details["retry_after"] <= 10
    assert services.broker.place_calls == 1 and services.limit.today_count() == 1
    services.pass_settling_window()
    answer, status, _ = services.place_single()  # nothing appeared: the retry places afresh
    assert status == 200 and len(services.broker.live()) == 1
    assert services.limit.today_count() == 1 and services.broker.place_calls == 2


def test_a_gtt_the_broker_creates_after_the_timeout_answers_the_retry_within_the_window(services):
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    (late_id,) = services.broker.finish_late()  # Upstox finishes the work seconds later
    answer, status, _ = services.place_single()
    assert status == 200 and answer["trigger_id"] == late_id
    assert services.broker.place_calls == 1 and services.limit.today_count() == 1
    assert services.store.orders.get(late_id) is not None


def test_the_recovery_keeps_a_settling_place_then_lapses_it_after_the_window(services):
    services.broker.next_place_faults = ["before"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    assert services.settle() == [] and services.limit.today_count() == 1 and services.states() == ["settling"]
    services.pass_settling_window()
    assert len(services.settle()) == 1
    assert services.limit.today_count() == 0 and services.states() == ["lapsed"]


def test_a_very_late_gtt_with_no_fresh_place_is_recorded_and_counted_and_answers_duplicates(services):
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        _, _, first_ctx = services.place_single()
    services.pass_settling_window()
    services.settle()  # lapsed: the trade is given back
    assert services.limit.today_count() == 0
    (late_id,) = services.broker.finish_late()  # after the window
    assert services.settle() == [f"counted {late_id}"]
    assert services.limit.today_count() == 1 and services.store.orders.get(late_id) is not None
    again, status, _ = services.place_single()  # the caller's retry gets the GTT, nothing new is placed
    assert status == 200 and again["duplicate"] is True and again["trigger_id"] == late_id
    assert services.broker.place_calls == 1 and services.settle() == []
    assert services.count(AuditRecord) == 1  # the late GTT's own row (the test drives no HTTP edge)


def test_a_very_late_gtt_is_cancelled_when_its_request_was_placed_afresh(services):
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    services.pass_settling_window()
    fresh, status, _ = services.place_single()  # the retry after the window places afresh
    assert status == 200 and services.limit.today_count() == 1
    (late_id,) = services.broker.finish_late()
    assert services.settle() == [f"cancelled {late_id}"]
    assert [gtt.gtt_id for gtt in services.broker.live()] == [fresh["trigger_id"]]
    assert services.limit.today_count() == 1 and services.store.orders.get(late_id) is None


def test_a_very_late_gtt_is_cancelled_when_the_days_limit_is_used_up(db_engine):
    services = Services(db_engine, limit=1)
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single("9.61")
    services.pass_settling_window()
    services.settle()
    services.place_single("9.70")  # another alert takes the day's one trade
    (late_id,) = services.broker.finish_late()
    assert services.settle() == [f"cancelled {late_id}"]
    assert len(services.broker.live()) == 1 and services.limit.today_count() == 1


def test_a_very_late_gtt_that_another_running_place_may_own_is_left_to_it(services):
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single("9.61")
    services.pass_settling_window()
    services.settle()
    services.broker.finish_late()
    services.place_single("9.61", key="another-alert", stops_before_record=True)  # same order, not yet recorded
    assert services.settle() == []  # two candidates, one of them the other place's
    assert len(services.broker.live()) == 2


def test_a_refused_place_leaves_no_record_and_no_trade(services):
    services.broker.next_place_faults = []
    services.limit.limit = 0
    with pytest.raises(Exception, match="Daily trade limit"):
        services.place_single()
    assert services.count(RequestRecord) == 0 and services.broker.place_calls == 0


def test_a_crash_between_the_brokers_answer_and_the_record_is_settled_by_the_recovery(db_engine):
    services = Services(db_engine, stale_after=timedelta(0))
    _, _, ctx = services.place_single(stops_before_record=True)
    gtt_id = services.unrecorded_gtt_id
    assert services.store.orders.get(gtt_id) is None
    assert len(services.settle()) == 1
    assert services.store.orders.get(gtt_id) is not None
    assert services.store.audit.exists(ctx.request_id)  # one audit row per request, always
    assert services.limit.today_count() == 1 and len(services.broker.live()) == 1
    assert services.settle() == []


def test_modify_replaces_the_trigger_at_the_broker_and_in_the_record(services):
    placed, _, _ = services.place_single("9.61")
    ctx = services.context()
    order = Order("IDEA", "NSE", PlaceIntent(trigger_type="SINGLE", action="BUY", product="CNC", quantity=20,
                                             triggerprice_tg=Decimal("9.75")))
    answer, status = services.gtts.modify_once(ctx, placed["trigger_id"], order, {"q": 20}, None)
    assert status == 200 and answer["entry"] == Decimal("9.75")
    (gtt,) = services.broker.live()
    assert gtt.quantity == 20 and gtt.rules[0].trigger_price == Decimal("9.75")
    assert services.store.orders.get(placed["trigger_id"]).quantity == 20


def test_cancel_cancels_at_the_broker_and_records_it(services):
    placed, _, _ = services.place_single()
    answer, status = services.gtts.cancel_once(services.context(), placed["trigger_id"], {}, None)
    assert status == 200 and answer == {"status": "success", "trigger_id": placed["trigger_id"]}
    assert services.broker.gtts[placed["trigger_id"]].rules[0].status == CANCELLED
    assert services.store.orders.get(placed["trigger_id"]).status == "cancelled"


def test_an_oco_whose_second_leg_was_made_but_its_answer_lost_is_placed_whole(services):
    services.broker.next_place_faults = [None, "lost"]  # the upper leg is made; its answer never comes
    order = Order("IDEA", "NSE", PlaceIntent(trigger_type="OCO", action="SELL", product="CNC", quantity=10,
                                             triggerprice_sl=Decimal("9.00"), triggerprice_tg=Decimal("10.00")))
    ctx = services.context()
    answer, status = services.place(ctx, order, {"oco": 1}, "oco-1")
    assert status == 200 and len(services.broker.live()) == 2 and services.broker.place_calls == 2
    recorded = services.store.orders.get(answer["trigger_id"])
    assert recorded is not None and sorted(recorded.broker_ids) == sorted(g.gtt_id for g in services.broker.live())
    assert services.limit.today_count() == 1


def test_a_failed_place_never_claims_a_gtt_created_elsewhere_just_before(services):
    from openalgo_gtt.domain.model import ABOVE, BUY, ENTRY, SINGLE, GttRequest, GttRule

    request = GttRequest(SINGLE, IDEA.instrument_key, BUY, "D", 10, (GttRule(ENTRY, ABOVE, Decimal("9.61")),))
    services.broker.gtts["GTT-APP1"] = services.broker._gtt(
        "GTT-APP1", request, created_at=services.clock.now() - timedelta(seconds=1))  # in the Upstox app
    services.broker.next_place_faults = ["before"]  # the place fails before doing any work
    with pytest.raises(BrokerTimeout):
        services.place_single("9.61")
    assert services.store.orders.get("GTT-APP1") is None  # not claimed: settling, its trade kept
    services.pass_settling_window()
    services.settle()
    assert services.store.orders.get("GTT-APP1") is None and services.limit.today_count() == 0


def test_a_lost_place_never_claims_the_gtt_another_place_made_before_it_is_recorded(services):
    _, _, first_ctx = services.place_single("9.61", key="alert-a", stops_before_record=True)  # made, not recorded
    first_gtt = services.unrecorded_gtt_id
    services.broker.next_place_faults = ["before"]  # another alert for the same order: its place fails
    with pytest.raises(BrokerTimeout):  # the first alert's GTT matches, but is not this one's: settling
        services.place_single("9.61", key="alert-b")
    with pytest.raises(Settling):  # its retry in the window leaves it alone too
        services.place_single("9.61", key="alert-b")
    assert services.limit.today_count() == 2  # the first's trade, and the second's while it settles
    services.clock.advance(timedelta(minutes=5).total_seconds())  # the first's process has gone quiet
    services.settle()  # the GTT goes to the attempt begun first; the second's trade is given back
    recorded = services.store.orders.get(first_gtt)
    assert recorded is not None and recorded.request_id == first_ctx.request_id
    assert services.limit.today_count() == 1 and len(services.broker.live()) == 1


def test_of_two_places_whose_answers_were_lost_the_one_begun_first_takes_the_gtt(services):
    services.broker.next_place_faults = ["before"]
    with pytest.raises(BrokerTimeout):
        services.place_single("9.61", key="alert-a")
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single("9.61", key="alert-b")
    (late_id,) = services.broker.finish_late()  # one GTT, and it matches both
    with pytest.raises(Settling):  # the later place leaves it to the earlier one
        services.place_single("9.61", key="alert-b")
    answer, status, _ = services.place_single("9.61", key="alert-a")
    assert status == 200 and answer["trigger_id"] == late_id
    with pytest.raises(Settling):
        services.place_single("9.61", key="alert-b")
    assert services.broker.place_calls == 2 and services.limit.today_count() == 2


@pytest.mark.parametrize("broker_did_the_work", [True, False])
def test_an_unexpected_failure_after_the_trade_was_taken_is_settled_never_left_counted(db_engine, broker_did_the_work):
    services = Services(db_engine, stale_after=timedelta(0))
    place_gtt = services.broker.place_gtt

    def broken(request):  # a failure that says nothing of the broker (a bug, a store fault)
        if broker_did_the_work:
            place_gtt(request)
        raise RuntimeError("boom")

    services.broker.place_gtt = broken
    with pytest.raises(RuntimeError):
        services.place_single()
    assert services.limit.today_count() == 1  # kept: the broker may have the GTT
    services.settle()
    if broker_did_the_work:  # found at the broker and recorded, its trade counted once
        (gtt,) = services.broker.live()
        assert services.store.orders.get(gtt.gtt_id) is not None and services.limit.today_count() == 1
    else:  # nothing there once the window has passed: the trade is given back
        services.pass_settling_window()
        services.settle()
        assert services.limit.today_count() == 0


def place_bracket(services, key="alert-1"):
    order = Order("IDEA", "NSE", PlaceIntent(trigger_type="BRACKET", action="BUY", product="CNC", quantity=10))
    body = {"symbol": "IDEA", "exchange": "NSE", "trigger_type": "BRACKET", "action": "BUY", "quantity": 10}
    ctx = services.context()
    answer, status = services.place(ctx, order, body, key)
    return answer, status


@pytest.mark.parametrize("late", [False, True], ids=["nothing placed", "placed late"])
def test_a_retry_refused_before_the_broker_keeps_the_earlier_attempt_settling(services, late):
    services.broker.next_place_faults = ["late" if late else "before"]
    with pytest.raises(BrokerTimeout):
        place_bracket(services)
    services.broker.quotes = lambda keys: {}  # the retry cannot be planned now: no last price
    with pytest.raises(Settling):  # the earlier attempt is settled first, still in its window
        place_bracket(services)
    late_ids = services.broker.finish_late()
    services.pass_settling_window()
    services.settle()
    if late:  # found and recorded, its one trade counted
        assert services.store.orders.get(late_ids[0]) is not None and services.limit.today_count() == 1
    else:  # nothing was ever placed: the trade is given back
        assert services.broker.live() == [] and services.limit.today_count() == 0


class Killed(BaseException):
    """The process dies here: nothing after it runs, not even the request's own error handling."""


def test_a_very_late_gtt_is_counted_when_the_retry_holding_its_request_died_before_placing(services):
    """A retry took the lapsed place's request over, then its process died while planning
    (before its own attempt began): the request is left pending with nothing to settle it. The
    GTT the broker makes late is still the request's: recorded and counted once its holder has
    gone quiet, never left live at the broker and unknown here."""
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        place_bracket(services)
    services.pass_settling_window()
    services.settle()  # lapsed: the trade is given back, the request open to a retry
    quotes = services.broker.quotes

    def die(keys):
        raise Killed()

    services.broker.quotes = die
    with pytest.raises(Killed):
        place_bracket(services)  # takes the request over, then dies planning
    with services.store.engine.connect() as conn:
        assert conn.execute(select(RequestRecord.state)).scalars().all() == ["pending"]
    services.broker.quotes = quotes
    (late_id,) = services.broker.finish_late()
    assert services.settle() == []  # its holder may still be placing it: left to it
    services.clock.advance(services.attempts.stale_after.total_seconds() + 1)  # it has gone quiet
    assert services.settle() == [f"counted {late_id}"]
    assert services.states() == ["found_late"] and services.limit.today_count() == 1
    assert services.store.orders.get(late_id) is not None
    again, status = place_bracket(services)  # a later retry gets it, nothing new is placed
    assert status == 200 and again["duplicate"] is True and again["trigger_id"] == late_id
    assert services.broker.place_calls == 1 and len(services.broker.live()) == 1


def test_a_very_late_gtt_is_cancelled_when_its_request_was_refused_when_sent_again(services):
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    services.pass_settling_window()
    place_gtt = services.broker.place_gtt

    def refuse(request):  # the fresh place after the lapse is refused: its caller hears it failed
        services.broker.place_gtt = place_gtt
        raise InputRejected("trigger price too close to the last price", http_status=400, may_have_reached=False)

    services.broker.place_gtt = refuse
    with pytest.raises(InputRejected):
        services.place_single()
    (late_id,) = services.broker.finish_late()
    assert services.settle() == [f"cancelled {late_id}"]
    assert services.broker.live() == [] and services.limit.today_count() == 0


def test_a_very_late_gtt_is_cancelled_after_a_fresh_place_however_long_after_the_dedupe_window(services):
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    services.pass_settling_window()
    fresh, status, _ = services.place_single()  # the retry places afresh
    services.clock.advance(61)  # the body-hash records' 60 s window has passed
    services.settle()  # purges expired answered records
    (late_id,) = services.broker.finish_late()
    assert services.settle() == [f"cancelled {late_id}"]
    assert [g.gtt_id for g in services.broker.live()] == [fresh["trigger_id"]] and services.limit.today_count() == 1


def test_an_oco_whose_second_leg_is_refused_and_first_cannot_be_withdrawn_is_settled(db_engine):
    services = Services(db_engine, stale_after=timedelta(0))
    broker = services.broker
    place_gtt, cancel_gtt, get_gtt = broker.place_gtt, broker.cancel_gtt, broker.get_gtt
    calls = []

    def place(request):
        calls.append(request)
        if len(calls) == 2:  # the target leg is refused: nothing placed
            raise InputRejected("trigger too close", http_status=400, may_have_reached=False)
        return place_gtt(request)

    def down(*_args):
        raise BrokerTimeout("no answer", may_have_reached=True)

    broker.place_gtt, broker.cancel_gtt, broker.get_gtt = place, down, down
    order = Order("IDEA", "NSE", PlaceIntent(trigger_type="OCO", action="SELL", product="CNC", quantity=10,
                                             triggerprice_sl=Decimal("9.00"), triggerprice_tg=Decimal("10.00")))
    with pytest.raises(InputRejected) as refused:
        services.place(services.context(), order, {"oco": 1}, "oco-1")
    assert "could not be withdrawn" in refused.value.message
    broker.place_gtt, broker.cancel_gtt, broker.get_gtt = place_gtt, cancel_gtt, get_gtt  # Upstox is back
    services.pass_settling_window()
    services.settle()  # the half pair is withdrawn, the trade given back
    assert broker.live() == [] and services.limit.today_count() == 0


def test_a_retry_while_the_first_attempt_still_runs_gets_503_with_retry_after(services, monkeypatch):
    from openalgo_gtt.services.answers import ApiError

    monkeypatch.setattr("openalgo_gtt.services.exactly_once.WAIT_FOR_FIRST", 0.3)
    release = threading.Event()

    def held(request):  # Upstox holds the first attempt past the caller's patience
        release.wait(5)
        raise BrokerTimeout("no answer", may_have_reached=True)

    services.broker.place_gtt = held
    first = threading.Thread(target=lambda: pytest.raises(BrokerTimeout, services.place_single))
    first.start()
    try:
        until(lambda: services.count(RequestRecord) == 1, "the first attempt to hold the request's record")
        with pytest.raises(ApiError) as retry:
            services.place_single()
    finally:
        release.set()
        first.join()
    assert retry.value.status == 503 and retry.value.details["retry_after"] >= 1


def test_a_legacy_place_the_recovery_settled_is_replayed_in_the_seed_engines_shape(db_engine):
    from openalgo_gtt.services.answers import LEGACY_PLACE, seed_answer

    services = Services(db_engine, stale_after=timedelta(0))
    order = Order("IDEA", "NSE", PlaceIntent(trigger_type="SINGLE", action="BUY", product="CNC", quantity=10,
                                             triggerprice_tg=Decimal("9.61")))
    params = {"instrument": IDEA.instrument_key, "qty": "10", "transaction_type": "BUY"}
    first, _ = services.place(services.context(), order, params, None, endpoint=LEGACY_PLACE, render=seed_answer)
    services.settle()  # the process stopped before recording it
    again, status = services.place(services.context(), order, params, None, endpoint=LEGACY_PLACE,
                                   render=seed_answer)
    assert status == 200 and again["duplicate"] is True
    assert set(first) <= set(again) and again["gtt_id"] == first["gtt_id"] and again["success"] is True


def test_a_duplicate_of_a_place_the_recovery_settled_answers_like_the_place(db_engine):
    services = Services(db_engine, stale_after=timedelta(0))
    _, _, ctx = services.place_single(stops_before_record=True)
    services.settle()
    again, status, _ = services.place_single()
    assert status == 200 and again["duplicate"] is True and again["original_request_id"] == ctx.request_id
    assert again["trigger_id"] == services.unrecorded_gtt_id and Decimal(str(again["entry"])) == Decimal("9.61")


def test_an_idempotency_key_belongs_to_one_request(services):
    from openalgo_gtt.services.exactly_once import KeyReused

    placed, _, _ = services.place_single("9.61", key="order-42")
    with pytest.raises(KeyReused, match="order-42"):  # a cancel reusing the place's key
        services.gtts.cancel_once(services.context(), placed["trigger_id"], {"trigger_id": placed["trigger_id"]},
                                  "order-42")
    assert services.broker.gtts[placed["trigger_id"]].can_fire  # nothing was cancelled
    with pytest.raises(KeyReused):  # another place body with the same key
        services.place_single("9.70", key="order-42")
    assert services.broker.place_calls == 1
    again, status, _ = services.place_single("9.61", key="order-42")  # the same request again
    assert status == 200 and again["duplicate"] is True


def test_the_same_request_spelt_by_another_client_is_still_the_same_request(services):
    from openalgo_gtt.services.exactly_once import KeyReused

    order = Order("IDEA", "NSE", PlaceIntent(trigger_type="SINGLE", action="BUY", product="CNC", quantity=10,
                                             triggerprice_tg=Decimal("9.61")))
    body = {"symbol": "IDEA", "exchange": "NSE", "quantity": 10, "triggerprice_tg": 9.61}
    ctx = services.context()
    first, _ = services.place(ctx, order, body, "k-1")
    respelt = {"symbol": "IDEA", "exchange": "NSE", "quantity": "10", "triggerprice_tg": "9.610"}
    again, status = services.place(services.context(), order, respelt, "k-1")
    assert status == 200 and again["duplicate"] is True and again["trigger_id"] == first["trigger_id"]
    with pytest.raises(KeyReused):  # another price is another request
        services.place(services.context(), order, {**body, "triggerprice_tg": "9.62"}, "k-1")
    assert services.broker.place_calls == 1


def test_a_retry_that_cannot_look_at_the_broker_within_the_window_is_settling_not_an_error(services):
    services.broker.next_place_faults = ["before"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    services.broker.list_fails = True  # the look-up times out as well
    with pytest.raises(Settling):
        services.place_single()
    assert services.broker.place_calls == 1 and services.limit.today_count() == 1  # intent and trade kept
    services.broker.list_fails = False
    services.pass_settling_window()
    answer, status, _ = services.place_single()
    assert status == 200 and services.broker.place_calls == 2 and services.limit.today_count() == 1


def test_the_trader_hears_of_a_lapsed_place_and_of_its_very_late_gtt(services):
    services.broker.next_place_faults = ["late"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    services.pass_settling_window()
    services.settle()
    with services.store.engine.connect() as conn:
        (request_id,) = [plan["order"]["request_id"] for plan in conn.execute(select(PlaceAttemptRow.plan)).scalars()]
    ((lapsed, _),) = services.store.outbox.events_for(request_id)  # no GTT yet: filed under the request
    assert lapsed.kind == "outcome_unknown" and lapsed.symbol == "IDEA" and "given back" in lapsed.message
    (late_id,) = services.broker.finish_late()
    services.settle()
    ((found, deliveries),) = services.store.outbox.events_for(late_id)
    assert found.kind == "found_late" and "counted" in found.message and deliveries == ["pending"]


def test_a_place_is_recorded_before_the_caller_hears_its_trigger_id(services):
    """Whatever the caller does with the id it was given (a cancel on another worker, a listing)
    finds the record: it is written before the answer."""
    seen_when_answered = []
    recorded = services.attempts.recorded

    def record_then_look(attempt, legs, **kwargs):
        recorded(attempt, legs, **kwargs)
        seen_when_answered.append(services.store.orders.get(legs[0][0]))

    services.attempts.recorded = record_then_look
    answer, status, ctx = services.place_single()
    assert status == 200 and seen_when_answered[0].trigger_id == answer["trigger_id"]
    assert [t.trigger_id for t in services.gtts.recorded(TriggerStatus.ACTIVE)] == [answer["trigger_id"]]
    assert services.store.audit.exists(ctx.request_id)


def test_a_place_the_store_cannot_record_answers_unknown_never_an_id_it_does_not_hold(db_engine):
    """The broker made the GTT but the RECORDED move fails twice (the database away): the caller
    hears a 503 it retries, not a trigger id; the watcher records the GTT, and the retry is
    answered with it. Nothing is placed twice, and the trade is counted once."""
    from openalgo_gtt.services.place import NotRecorded

    services = Services(db_engine, stale_after=timedelta(0))
    recorded = services.attempts.recorded

    def database_away(*_args, **_kwargs):
        raise OperationalError("UPDATE place_attempts", {}, Exception("database is locked"))

    services.attempts.recorded = database_away
    with pytest.raises(NotRecorded) as refused:
        services.place_single("9.61", key="alert-1")
    assert refused.value.status == 503 and refused.value.details["outcome_unknown"] is True
    services.attempts.recorded = recorded
    (gtt,) = services.broker.live()
    assert services.store.orders.get(gtt.gtt_id) is None
    services.settle()  # the watcher's pass: the attempt has gone quiet, its GTT is found and recorded
    assert services.store.orders.get(gtt.gtt_id) is not None
    again, status, _ = services.place_single("9.61", key="alert-1")
    assert status == 200 and again["trigger_id"] == gtt.gtt_id
    assert services.broker.place_calls == 1 and services.limit.today_count() == 1


def test_a_retry_that_lapses_the_earlier_attempt_keeps_its_request_from_an_identical_retry(services):
    """The retry that finds the earlier attempt lapsed holds the request while it places afresh:
    an identical retry arriving meanwhile (in the same process) must not place it a second time."""
    from openalgo_gtt.services.answers import ApiError

    services.broker.next_place_faults = ["before"]
    with pytest.raises(BrokerTimeout):
        services.place_single()
    services.pass_settling_window()
    plan, raced = services.place.planner.plan, []

    def plan_while_another_retry_arrives(order):
        # A body-hash retry plans once before it finds the request's record (a bad request leaves
        # none), then again once it has taken the record over and lapsed the earlier attempt: the
        # identical retry arrives during that second planning.
        raced.append("planning")
        if raced.count("planning") == 2:
            try:
                raced.append(services.place_single()[1])
            except ApiError as exc:  # still being processed: TradingView re-sends later
                raced.append(exc.status)
        return plan(order)

    services.place.planner.plan = plan_while_another_retry_arrives
    answer, status, _ = services.place_single()
    assert status == 200 and [r for r in raced if r != "planning"] == [503]
    assert len(services.broker.live()) == 1 and services.limit.today_count() == 1


def test_every_arrow_of_the_place_attempt_has_its_effects_and_no_other_move_exists():
    from openalgo_gtt.domain.place_attempt import ARROWS, EFFECTS, AttemptState, Effect, IllegalMove, move

    for current in AttemptState:
        for to in AttemptState:
            if to in ARROWS.get(current, ()):
                assert move(current, to).effects == EFFECTS[(current, to)]
            else:
                with pytest.raises(IllegalMove):
                    move(current, to)
    # Money: a trade is given back exactly when nothing is (or will be counted) at the broker.
    gives_back = {arrow for arrow, effects in EFFECTS.items() if Effect.GIVE_BACK_TRADE in effects}
    assert gives_back == {(AttemptState.SENDING, AttemptState.REFUSED), (AttemptState.SETTLING, AttemptState.LAPSED)}
