"""A deterministic simulation of exactly once and OCO pairs, after TigerBeetle's VOPR and
FoundationDB's simulator: a seed drives the real services (built by Gateway.build) and the real
store (SQLite) through random places, duplicates, retries, modifies, cancels, fires, broker
faults and crashes, on a clock it moves itself; after every step, and once everything has
settled, it checks the promises the gateway makes:

  1. every GTT live at the broker is recorded and counted exactly once, or the gateway cancelled it;
  2. no request has two live GTTs;
  3. the day's trade count equals the number of counted GTTs;
  4. no OCO has exactly one live leg after a watcher pass;
  5. every answer agrees with the final state: a "success" GTT exists, an "error" left none live;
  and no call ends in an internal error (a 500).

A crash can strike at any commit: before it (the transaction is lost) or just after it (nothing
after it runs, the caller hears nothing); every in-memory object is then dropped and the services
are rebuilt from the store. The broker is the outside world and carries on.

    python bench/simulate.py --seeds 2000 --first 1 [--jobs 2] [--steps 40]

Needs only the runtime dependencies (`pip install -e .`). Prints one line per failing seed with
the trace that replays it, and last `N seeds, V violations`; exits non-zero on any violation.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from sqlalchemy import event

    from bench.sim_broker import FAULTS, Crash, SimBroker
    from openalgo_gtt.brokers import deadline as broker_deadline
    from openalgo_gtt.brokers.errors import BrokerError
    from openalgo_gtt.domain.clock import ManualClock
    from openalgo_gtt.domain.intent import PlaceIntent
    from openalgo_gtt.domain.place_attempt import FINAL
    from openalgo_gtt.services.answers import error_status_and_body
    from openalgo_gtt.services.context import RequestContext
    from openalgo_gtt.services.planner import Order
except ImportError as missing:  # run outside the project's environment
    sys.exit(f"bench/simulate.py runs the gateway's own services: install them first with "
             f"`pip install -e .` ({missing})")

SETTLE_SECONDS = 10
SIM_DB = "sim.db"
LATE_HORIZON_SECONDS = 15 * 60
PRICES = ("9.61", "9.70", "9.80")


@dataclass
class Answer:
    step: int
    kind: str  # place, cancel or modify
    target: str | None  # the trigger id a cancel or modify named
    request_id: str
    status: int
    body: dict


@dataclass
class World:
    seed: int
    trace: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class Simulation:
    def __init__(self, seed: int, template: Path, workdir: Path, steps: int):
        self.rng = random.Random(seed)
        self.world = World(seed)
        self.steps = steps
        self.db = workdir / SIM_DB  # one at a time in a process: its engine is reused (_Engines)
        _Engines.reset(self.db)
        shutil.copyfile(template, self.db)
        self.clock = ManualClock()
        self.broker = SimBroker(self.clock, self.rng)
        self.limit = self.rng.choice((3, 6, 1000))
        self.crash_odds = self.rng.choice((0.0, 0.02, 0.06))
        # Besides the odds, one commit chosen in advance: over many seeds every commit point of
        # a run is struck, the rare ones (a lapse, a late GTT) included.
        self.crash_at = self.rng.randrange(1, 120)
        self.commits = 0
        self.fault_odds = self.rng.choice((0.1, 0.3))
        # How often a place finds every send slot taken by a burst, and is queued.
        self.burst_odds = self.rng.choice((0.0, 0.3, 0.6))
        self.generation = 0
        self.fired: list[tuple[int, str]] = []  # (step, broker GTT id)
        self.alerts = [self._alert(i) for i in range(self.rng.randint(2, 6))]
        self.gateway = None
        self._reader = sqlite3.connect(self.db, isolation_level=None)
        self._boot()

    # -- the process --------------------------------------------------------------------------

    def _boot(self) -> None:
        from openalgo_gtt.config import Settings
        from openalgo_gtt.gateway import Gateway

        self.generation += 1
        self.dead = False
        self.broker.dead = lambda: self.dead
        settings = Settings(database_url=f"sqlite:///{self.db}", data_dir=self.db.parent, broker="upstox",
                            api_key_pepper="sim-pepper-" + "p" * 32, daily_trade_limit=self.limit,
                            settle_seconds=SETTLE_SECONDS, dedupe_window_seconds=60, access_token="sim")
        self.gateway = Gateway.build(settings, broker=self.broker, clock=self.clock)
        # Another host's holder: its liveness is unknown here, so only time tells it stopped.
        self.gateway.store.requests.holder = f"sim-host:{self.generation}:x"
        event.listen(self.gateway.engine, "commit", self._on_commit)
        event.listen(self.gateway.engine, "before_cursor_execute", self._on_execute)

    def _on_commit(self, _conn) -> None:
        if self.dead:
            raise Crash()
        self.commits += 1
        if self.commits == self.crash_at or (self.crash_odds and self.rng.random() < self.crash_odds):
            self.dead = True
            self.world.trace.append("  crash " + self.rng.choice(("before", "after")) + " a commit")
            if self.world.trace[-1].endswith("before a commit"):
                raise Crash()  # the commit never happens

    def _on_execute(self, *_args) -> None:
        if self.dead:
            raise Crash()

    def _crashed(self) -> None:
        """Drop every object of the dead process; rebuild from the store."""
        self._unlisten()
        self.gateway.engine.dispose()
        self._boot()

    def _unlisten(self) -> None:
        for name, listener in (("commit", self._on_commit), ("before_cursor_execute", self._on_execute)):
            if event.contains(self.gateway.engine, name, listener):
                event.remove(self.gateway.engine, name, listener)

    def release(self) -> None:
        """This seed is over (passed or not): its hooks leave the shared engine, its reader closes."""
        if self.gateway is not None:
            self._unlisten()
        self._reader.close()

    # -- the callers --------------------------------------------------------------------------

    def _alert(self, i: int) -> dict:
        oco = self.rng.random() < 0.4
        price = self.rng.choice(PRICES)
        body = {"symbol": "IDEA", "exchange": "NSE", "quantity": self.rng.choice((1, 10)), "product": "CNC",
                "trigger_type": "OCO" if oco else "SINGLE", "action": "SELL" if oco else "BUY"}
        if oco:
            body.update(triggerprice_sl="9.00", triggerprice_tg=price)
        else:
            body["triggerprice_tg"] = price
        key = f"alert-{i}" if self.rng.random() < 0.5 else None
        return {"body": body, "key": key}

    def _order(self, body: dict) -> Order:
        intent = PlaceIntent(trigger_type=body["trigger_type"], action=body["action"], product=body["product"],
                             quantity=body["quantity"], triggerprice_sl=Decimal(body.get("triggerprice_sl", "0")),
                             triggerprice_tg=Decimal(body["triggerprice_tg"]))
        return Order(body["symbol"], body["exchange"], intent)

    def _ctx(self, path: str) -> RequestContext:
        return RequestContext(request_id=f"r{self.world.seed}-{len(self.world.trace)}-{self.rng.randrange(10**9)}",
                              method="POST", endpoint=path, client_addr="127.0.0.1", api_key_name="sim")

    def _call(self, what: str, ctx: RequestContext, run, target: str | None = None) -> None:
        """A caller's request: its answer is remembered (unless the process died before giving
        it); an internal error is a violation."""
        try:
            body, status = run()
        except Crash:
            raise
        except Exception as exc:  # noqa: BLE001 - worded as the API words it; a 500 is a violation
            status, body = error_status_and_body(exc)
            if status == 500:
                self.world.violations.append(f"{what} raised {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                return
        if self.dead:
            raise Crash()  # died after its last commit: the caller never hears
        if status >= 500 and not body.get("outcome_unknown") and status not in (503,):
            self.world.violations.append(f"{what} answered {status}: {body}")
        self.world.answers.append(Answer(len(self.world.trace), what, target, ctx.request_id, status, body))
        self.world.trace[-1] += f" -> {status} {body.get('trigger_id') or body.get('message', '')[:60]}"

    def place(self) -> None:
        alert = self.rng.choice(self.alerts)
        ctx = self._ctx("/api/v1/placegtt")
        self.world.trace.append(f"place {alert['key'] or 'no key'} {alert['body']['trigger_type']} "
                                f"{alert['body']['triggerprice_tg']}")
        self.broker.pacer_full = self.rng.random() < self.burst_odds
        if self.broker.pacer_full:
            self.world.trace[-1] += " (burst)"
        broker_deadline.start(2.5)  # the caller's patience, as the API gives every request
        try:
            self._call("place", ctx, lambda: self.gateway.place(ctx, self._order(alert["body"]), alert["body"],
                                                                alert["key"]))
        finally:
            broker_deadline.clear()
            self.broker.pacer_full = False

    def send_queue(self) -> None:
        """The lease holder sends what is queued, a few at a time."""
        self.world.trace.append("queue pass")
        for _ in range(self.rng.randint(1, 3)):
            if not self.gateway.place.queue.dispatch_next(wait_for_send=True):
                break
            if self.dead:
                raise Crash()

    def cancel(self) -> None:
        triggers = self.gateway.orders.list()
        if not triggers:
            return
        trigger = self.rng.choice(triggers)
        target = trigger.trigger_id
        if len(trigger.broker_ids) == 2 and self.rng.random() < 0.5:
            target = self.rng.choice(trigger.broker_ids)  # by a leg's id
        ctx = self._ctx("/api/v1/cancelgtt")
        self.world.trace.append(f"cancel {target}")
        self._call("cancel", ctx, lambda: self.gateway.gtts.cancel_once(ctx, target, {"trigger_id": target}, None),
                   target)

    def modify(self) -> None:
        triggers = [t for t in self.gateway.orders.list() if t.trigger_type == "single"]
        if not triggers:
            return
        trigger = self.rng.choice(triggers)
        price = self.rng.choice(PRICES)
        body = {"symbol": "IDEA", "exchange": "NSE", "quantity": trigger.quantity, "product": "CNC",
                "trigger_type": "SINGLE", "action": trigger.action, "triggerprice_tg": price}
        ctx = self._ctx("/api/v1/modifygtt")
        self.world.trace.append(f"modify {trigger.trigger_id} {price}")
        self._call("modify", ctx, lambda: self.gateway.gtts.modify_once(ctx, trigger.trigger_id, self._order(body),
                                                                        {**body, "trigger_id": trigger.trigger_id},
                                                                        None), trigger.trigger_id)

    def fire(self) -> None:
        live = self.broker.live()
        if not live:
            return
        gtt = self.rng.choice(live)
        self.world.trace.append(f"fire {gtt.gtt_id}")
        self.fired.append((len(self.world.trace), gtt.gtt_id))
        self.broker.fire(gtt.gtt_id)
        if self.rng.random() < 0.2:  # both legs of a pair fire in the same moment
            pair = [t for t in self.gateway.orders.list() if gtt.gtt_id in t.broker_ids and len(t.broker_ids) == 2]
            for other in (pair[0].broker_ids if pair else []):
                if other != gtt.gtt_id and self.broker.gtts[other].can_fire:
                    self.fired.append((len(self.world.trace), other))
                    self.broker.fire(other)

    def watch(self, check_pairs: bool = True) -> None:
        self.world.trace.append("watcher pass")
        faults = self.broker.faults_seen
        try:
            self.gateway.watcher.sync()
        except BrokerError as exc:
            self.world.trace[-1] += f" (broker: {exc.message[:40]})"
            return
        if self.dead:
            raise Crash()
        if check_pairs and self.broker.faults_seen == faults:
            self._no_half_pairs("after a watcher pass")

    def tick(self) -> None:
        seconds = self.rng.choice((0.5, 2, 5, 12, 40))
        self.world.trace.append(f"clock +{seconds}s")
        self.clock.advance(seconds)
        self.broker.run_due()

    def arm_fault(self) -> None:
        self.broker.armed = self.rng.choice(FAULTS)
        self.world.trace.append(f"  next write: {self.broker.armed}")

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> World:
        actions = [(self.place, 30), (self.cancel, 8), (self.modify, 5), (self.fire, 8), (self.watch, 10),
                   (self.tick, 14), (self.send_queue, 10)]
        population, weights = zip(*actions)
        for _ in range(self.steps):
            if self.rng.random() < self.fault_odds:
                self.arm_fault()
            action = self.rng.choices(population, weights)[0]
            try:
                action()
            except Crash:
                self._crashed()
            self.broker.armed = None if self.rng.random() < 0.5 else self.broker.armed
            self._check_always()
            if self.world.violations:
                return self.world
        self._settle()
        self._check_final()
        self.gateway.close()
        return self.world

    def _settle(self) -> None:
        """Everything settles: no more faults or crashes, time passes beyond every window."""
        self.crash_odds, self.crash_at = 0.0, 0
        self.broker.armed = None
        for seconds in (SETTLE_SECONDS + 1, 61, LATE_HORIZON_SECONDS + 1, 1):
            self.clock.advance(seconds)
            self.broker.run_due()
            for _ in range(2):
                try:
                    while self.gateway.place.queue.dispatch_next(wait_for_send=True):
                        pass
                    self.watch(check_pairs=False)
                except Crash:
                    self._crashed()

    # -- the invariants -----------------------------------------------------------------------

    # The checks read the database through sqlite3 directly: they run after every step, and
    # SQLAlchemy's per-statement work would be most of the simulation's time.

    def _attempts(self) -> list[SimpleNamespace]:
        rows = self._reader.execute("SELECT id, record_id, state, plan, trigger_id FROM place_attempts").fetchall()
        return [SimpleNamespace(id=r[0], record_id=r[1], state=r[2], plan=json.loads(r[3]), trigger_id=r[4])
                for r in rows]

    def _check_always(self) -> None:
        from openalgo_gtt.domain.place_attempt import COUNTED, AttemptState

        attempts = self._attempts()
        counted = sum(1 for a in attempts if AttemptState(a.state) in COUNTED)
        count = sum(c for (c,) in self._reader.execute("SELECT count FROM trade_counters"))
        if count != counted:
            self.world.violations.append(f"trade count {count} != {counted} attempts holding or counted a trade")
        self._one_live_gtt_per_request(attempts)

    def _one_live_gtt_per_request(self, attempts) -> None:
        live = {gtt.gtt_id for gtt in self.broker.live()}
        record_of = {a.trigger_id: a.record_id for a in attempts if a.trigger_id}
        by_record: dict[int, list[str]] = {}
        triggers = [(t, json.loads(b)) for t, b in self._reader.execute("SELECT trigger_id, broker_ids FROM gtt_orders")]
        for trigger_id, broker_ids in triggers:
            if any(b in live for b in broker_ids) and trigger_id in record_of:
                by_record.setdefault(record_of[trigger_id], []).append(trigger_id)
        for record_id, triggers in by_record.items():
            if len(triggers) > 1:
                self.world.violations.append(f"request record {record_id} has {len(triggers)} live GTTs: {triggers}")

    def _no_half_pairs(self, when: str) -> None:
        for trigger in self.gateway.orders.list():
            if len(trigger.broker_ids) == 2:
                live = [b for b in trigger.broker_ids if self.broker.gtts.get(b) and self.broker.gtts[b].can_fire]
                if len(live) == 1:
                    self.world.violations.append(f"OCO {trigger.trigger_id} has one live leg {live[0]} {when}")

    def _no_queued_alert_lost_or_twice(self, attempts) -> None:
        """Every alert answered "queued" ends placed once, or refused (the day's limit, the
        broker): never nothing, never twice."""
        from openalgo_gtt.domain.place_attempt import AttemptState

        ends: dict[str, list[str]] = {}
        for a in attempts:
            ends.setdefault(a.plan["order"]["request_id"], []).append(a.state)
        for request_id in _queued_requests(self.world.answers):
            states = ends.get(request_id, [])
            placed = sum(1 for s in states if s in (AttemptState.RECORDED, AttemptState.FOUND_LATE))
            if placed > 1:
                self.world.violations.append(f"queued request {request_id} placed {placed} times: {states}")
            elif placed == 0 and AttemptState.REFUSED not in states:
                self.world.violations.append(f"queued request {request_id} was lost: {states}")

    def _check_final(self) -> None:
        from openalgo_gtt.domain.place_attempt import AttemptState

        attempts = self._attempts()
        open_ = [a for a in attempts if AttemptState(a.state) not in FINAL]
        if open_:
            self.world.violations.append(f"attempts never settled: {[(a.id, a.state) for a in open_]}")
        known = self.gateway.orders.known_broker_ids([gtt.gtt_id for gtt in self.broker.live()])
        for gtt in self.broker.live():
            if gtt.gtt_id not in known:
                self.world.violations.append(f"GTT {gtt.gtt_id} is live at the broker and unknown to the gateway")
        recorded = self.gateway.orders.list()
        counted = sum(1 for a in attempts if AttemptState(a.state) in (AttemptState.RECORDED, AttemptState.FOUND_LATE))
        if counted != len(recorded):
            self.world.violations.append(f"{len(recorded)} GTTs recorded, {counted} attempts counted them")
        self._check_always()
        self._no_half_pairs("once settled")
        # The GTT each request's own attempt recorded (a modify later renames the trigger's request).
        by_request = {a.plan["order"]["request_id"]: self.gateway.orders.get(a.trigger_id)
                      for a in attempts if a.trigger_id and AttemptState(a.state) != AttemptState.CANCELLED_LATE}
        live = {gtt.gtt_id for gtt in self.broker.live()}
        legs_of = {b: t.broker_ids for t in recorded for b in t.broker_ids}
        self._no_queued_alert_lost_or_twice(attempts)
        for answer in self.world.answers:
            if answer.kind == "cancel" and answer.status == 200:
                legs = legs_of.get(answer.target, [answer.target])
                if any(b in live for b in legs):
                    self.world.violations.append(f"step {answer.step}: cancel of {answer.target} answered success "
                                                 "but a leg is still live")
                if any(step > answer.step and b in legs for step, b in self.fired):
                    self.world.violations.append(f"step {answer.step}: cancel of {answer.target} answered success "
                                                 "but a leg fired after it")
                if any(step < answer.step and b in legs for step, b in self.fired):
                    self.world.violations.append(f"step {answer.step}: cancel of {answer.target} answered success "
                                                 "after a leg had fired")
            elif answer.kind == "place" and answer.status == 200 and not answer.body.get("duplicate"):
                if self.gateway.orders.get(answer.body["trigger_id"]) is None:
                    self.world.violations.append(f"step {answer.step}: answered success {answer.body['trigger_id']}"
                                                 " but no such GTT is recorded")
            elif answer.kind == "place" and answer.status >= 400 and not answer.body.get("outcome_unknown") and answer.status not in (409, 429):
                trigger = by_request.get(answer.request_id)
                if trigger is not None and any(b in live for b in trigger.broker_ids):
                    self.world.violations.append(f"step {answer.step}: answered {answer.status} but its GTT "
                                                 f"{trigger.trigger_id} is live")


def _queued_requests(answers) -> set[str]:
    return {a.body.get("request_id") or a.body.get("original_request_id") for a in answers
            if a.kind == "place" and a.status == 202}


def _template(workdir: Path) -> Path:
    """One migrated database with the sample instruments, copied for every seed."""
    from openalgo_gtt.store.engine import make_engine
    from openalgo_gtt.store.instruments import ensure_instruments
    from openalgo_gtt.store.migrate import upgrade

    path = workdir / "template.db"
    if not path.exists():
        url = f"sqlite:///{path}"
        upgrade(url)
        engine = make_engine(url)
        ensure_instruments(engine)
        engine.dispose()
    return path


class _Engines:
    """One SQLAlchemy engine for the simulated database, reused by every simulated process (each
    boot after a crash, each seed) in this OS process. A boot still builds every service afresh
    from the store, and a crash still drops every connection (the pool is disposed); what is kept
    is SQLAlchemy's cache of compiled statements, a pure function of the statements (its key
    names the engine's dialect, so a new engine compiles everything again: most of a boot's cost)."""

    _by_url: dict = {}

    @classmethod
    def engine_for(cls, url: str):
        from openalgo_gtt.store.engine import make_engine

        engine = cls._by_url.get(url)
        if engine is None:
            engine = cls._by_url[url] = make_engine(url)
        engine.dispose()  # a new process: no connection of the last one survives
        return engine

    @classmethod
    def reset(cls, db: Path) -> None:
        """Before a seed's database replaces the last one: close every connection to it, then
        remove it with its WAL and shared memory (a stale WAL must never meet a fresh copy)."""
        engine = cls._by_url.get(f"sqlite:///{db}")
        if engine is not None:
            engine.dispose()
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            path.unlink(missing_ok=True)

    @classmethod
    def forget(cls, db: Path) -> None:
        cls.reset(db)
        cls._by_url.pop(f"sqlite:///{db}", None)


def run_seeds(seeds: list[int], steps: int) -> list[tuple[int, list[str], list[str]]]:
    """Run `seeds` in this process: (seed, violations, trace) of each that failed."""
    import logging

    from openalgo_gtt import gateway

    quiet_before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # the services log every fault they survive
    built_before, gateway.make_engine = gateway.make_engine, _Engines.engine_for
    try:
        return _run_seeds(seeds, steps)
    finally:
        gateway.make_engine = built_before
        logging.disable(quiet_before)


def _run_seeds(seeds: list[int], steps: int) -> list[tuple[int, list[str], list[str]]]:
    failed = []
    with tempfile.TemporaryDirectory(prefix="openalgo-gtt-sim-", dir=_tmp_root()) as tmp:
        workdir = Path(tmp)
        template = _template(workdir)
        for seed in seeds:
            sim = Simulation(seed, template, workdir, steps)
            try:
                world = sim.run()
            except Exception:  # noqa: BLE001 - a simulator failure is a failed seed
                sim.world.violations.append(traceback.format_exc())
                world = sim.world
            finally:
                sim.release()
            if world.violations:
                failed.append((seed, world.violations, world.trace))
        _Engines.forget(workdir / SIM_DB)
    return failed


def _tmp_root() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1, help="processes to spread the seeds over")
    args = parser.parse_args(argv)
    seeds = list(range(args.first, args.first + args.seeds))
    started = time.perf_counter()
    if args.jobs > 1:
        chunks = [seeds[i::args.jobs] for i in range(args.jobs)]
        with ProcessPoolExecutor(args.jobs) as pool:
            failed = [f for part in pool.map(run_seeds, chunks, [args.steps] * args.jobs) for f in part]
    else:
        failed = run_seeds(seeds, args.steps)
    for seed, violations, trace in sorted(failed):
        print(f"seed {seed}: {len(violations)} violation(s); replay: python bench/simulate.py --seeds 1 "
              f"--first {seed} --steps {args.steps}")
        for line in trace:
            print(f"  {line}")
        for violation in violations:
            print(f"  VIOLATION: {violation}")
    elapsed = time.perf_counter() - started
    print(f"{len(seeds)} seeds, {sum(len(v) for _, v, _ in failed)} violations ({elapsed:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
