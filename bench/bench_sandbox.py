"""Sandbox trigger benchmark: does a tick cost what it fires, not what exists?

Builds --gtts GTTs over --instruments instruments (singles ABOVE/BELOW, brackets with and
without trailing stops, BUY and SELL, placed around each instrument's price) and a stream of
--ticks ticks (one random walk per instrument, instruments interleaved at random). In one run:
  (a) the indexed engine core (openalgo_gtt.brokers.sandbox.engine.TriggerEngine, no database)
      over the whole stream;
  (b) the same engine and a plain scan of every active trigger per tick (NaiveEngine below, a
      reference written independently) over the first --naive-ticks ticks, from the same start;
      both must fire exactly the same rules at the same prices (checked);
  (c) end to end through SandboxBroker with SQLite persistence: place_gtt for every GTT, then
      apply_ticks one tick per call for the first --single-ticks ticks and --batch ticks per call
      for the rest; it must fire what (a) fired (checked).

    python bench/bench_sandbox.py [--gtts 10000] [--instruments 500] [--ticks 100000] [--out results.json]
"""
from __future__ import annotations

import argparse
import gc
import itertools
import json
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from openalgo_gtt.domain.model import (  # noqa: E402
    ABOVE, BELOW, BUY, ENTRY, IMMEDIATE, MULTIPLE, SELL, SINGLE, STOPLOSS, TARGET, GttRequest, GttRule,
)
from openalgo_gtt.brokers.sandbox import SandboxBroker, Tick, TriggerEngine  # noqa: E402

TICK_SIZE = Decimal("0.05")
AT = datetime(2026, 3, 2, 5, 0, tzinfo=timezone.utc)  # 10:30 IST, far from any expiry
MIN_SPEEDUP = 20.0


def _round(price: float) -> Decimal:
    return max(TICK_SIZE, (Decimal(str(price)) / TICK_SIZE).quantize(Decimal(1)) * TICK_SIZE)


# --- the workload --------------------------------------------------------------------------------


@dataclass
class Workload:
    keys: list[str]
    start: dict[str, Decimal]
    requests: list[GttRequest]
    ticks: list[tuple[str, Decimal]]
    rules: int = 0


def workload(n_gtts: int, n_instruments: int, n_ticks: int, seed: int) -> Workload:
    rng = random.Random(seed)
    keys = [f"NSE_EQ|INE{i:06d}01" for i in range(n_instruments)]
    start = {key: _round(rng.uniform(100, 3000)) for key in keys}
    requests = []
    for n in range(n_gtts):
        key = keys[n % n_instruments]
        price = float(start[key])
        side = rng.choice((BUY, SELL))
        away = rng.uniform(0.002, 0.03) * rng.choice((1, -1))
        entry = _round(price * (1 + away))
        entry_type = ABOVE if entry >= start[key] else BELOW
        if rng.random() < 0.4:
            requests.append(GttRequest(SINGLE, key, side, "D", 1, (GttRule(ENTRY, entry_type, entry),)))
            continue
        sign = 1 if side == BUY else -1
        target = _round(float(entry) * (1 + sign * rng.uniform(0.005, 0.015)))
        stop = _round(float(entry) * (1 - sign * rng.uniform(0.005, 0.015)))
        gap = _round(float(entry) * rng.uniform(0.003, 0.01)) if rng.random() < 0.5 else None
        requests.append(GttRequest(MULTIPLE, key, side, "D", 1, (
            GttRule(ENTRY, entry_type, entry),
            GttRule(TARGET, IMMEDIATE, target),
            GttRule(STOPLOSS, IMMEDIATE, stop, trailing_gap=gap),
        )))
    # Random walks: each step moves up to 0.25% of the price, in whole ticks.
    walk = dict(start)
    step = {key: max(1, int(float(start[key]) * 0.0025 / float(TICK_SIZE))) for key in keys}
    ticks = []
    for _ in range(n_ticks):
        key = keys[rng.randrange(n_instruments)]
        walk[key] = max(TICK_SIZE, walk[key] + TICK_SIZE * rng.randint(-step[key], step[key]))
        ticks.append((key, walk[key]))
    return Workload(keys, start, requests, ticks, sum(len(r.rules) for r in requests))


# --- the plain-scan reference ------------------------------------------------------------------------


@dataclass(eq=False)
class _NaiveRule:
    key: str
    n: int  # the GTT's index in the workload
    strategy: str
    trigger_type: str
    price: Decimal
    gap: Decimal | None
    buy: bool  # the ENTRY side is BUY
    status: str
    siblings: list = field(default_factory=list)


class NaiveEngine:
    """Every active trigger checked on every tick: the obvious implementation, same semantics."""

    def __init__(self) -> None:
        self.active: list[_NaiveRule] = []

    def place(self, n: int, request: GttRequest) -> None:
        rules = [
            _NaiveRule(request.instrument_key, n, r.strategy, r.trigger_type, r.trigger_price, r.trailing_gap,
                       request.transaction_type == BUY, "SCHEDULED" if r.strategy == ENTRY else "INACTIVE")
            for r in request.rules
        ]
        for rule in rules:
            rule.siblings = [other for other in rules if other is not rule]
        self.active.append(rules[0])

    def tick(self, key: str, ltp: Decimal) -> list[tuple[int, str, Decimal]]:
        fired = []
        changed = True
        while changed:
            changed = False
            for rule in self.active:
                if rule.status != "SCHEDULED" or rule.key != key:
                    continue
                if rule.strategy == ENTRY:
                    hit = ltp >= rule.price if rule.trigger_type == ABOVE else ltp <= rule.price
                elif (rule.strategy == TARGET) == rule.buy:
                    hit = ltp >= rule.price
                else:
                    hit = ltp <= rule.price
                if not hit:
                    continue
                rule.status = "COMPLETED"
                fired.append((rule.n, rule.strategy, rule.price))
                changed = True
                for other in rule.siblings:
                    if rule.strategy == ENTRY and other.status == "INACTIVE":
                        other.status = "SCHEDULED"
                        self.active.append(other)
                    elif rule.strategy != ENTRY and other.status == "SCHEDULED":
                        other.status = "CANCELLED"
        if fired:
            self.active = [rule for rule in self.active if rule.status == "SCHEDULED"]
        for rule in self.active:
            if rule.key == key and rule.gap is not None and rule.strategy == STOPLOSS:
                if rule.buy:
                    rule.price = max(rule.price, ltp - rule.gap)
                else:
                    rule.price = min(rule.price, ltp + rule.gap)
        return fired


# --- measurements --------------------------------------------------------------------------------------


def _indexed(work: Workload) -> tuple[TriggerEngine, dict[str, int]]:
    counter = itertools.count(1)
    engine = TriggerEngine(lambda at: str(next(counter)))
    ids = {}
    for n, request in enumerate(work.requests):
        gtt_id = f"GTT-S{n:014d}"
        engine.place(gtt_id, request, ltp=work.start[request.instrument_key], at=AT)
        ids[gtt_id] = n
    engine.take_changes()
    return engine, ids


def run_indexed(work: Workload, count: int) -> tuple[float, list]:
    engine, ids = _indexed(work)
    ticks = work.ticks[:count]
    fired = []
    tick = engine.tick
    gc.collect()
    started = time.perf_counter()
    for i, (key, ltp) in enumerate(ticks):
        events = tick(key, ltp, AT)
        if events:
            fired.extend((i, ids[e.gtt_id], e.strategy, e.price) for e in events)
        if i % 1000 == 999:
            engine.take_changes()  # what the broker does after every call
    seconds = time.perf_counter() - started
    return seconds, fired


def run_naive(work: Workload, count: int) -> tuple[float, list]:
    engine = NaiveEngine()
    for n, request in enumerate(work.requests):
        engine.place(n, request)
    fired = []
    gc.collect()
    started = time.perf_counter()
    for i, (key, ltp) in enumerate(work.ticks[:count]):
        fired.extend((i, n, strategy, price) for n, strategy, price in engine.tick(key, ltp))
    return time.perf_counter() - started, fired


def run_end_to_end(work: Workload, single_ticks: int, batch: int) -> dict:
    from sqlalchemy.orm import close_all_sessions

    from openalgo_gtt.store.db import make_session_factory
    from openalgo_gtt.store.engine import make_engine
    from openalgo_gtt.store.schema import metadata
    from openalgo_gtt.store.sandbox import SandboxRepository

    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        db = make_engine(f"sqlite:///{Path(tmp) / 'sandbox.db'}")
        metadata.create_all(db)
        broker = SandboxBroker(SandboxRepository(make_session_factory(db)), clock=lambda: AT)
        broker.apply_ticks([Tick(key, price, at=AT) for key, price in work.start.items()])
        gc.collect()
        started = time.perf_counter()
        ids = {broker.place_gtt(request): n for n, request in enumerate(work.requests)}
        place_s = time.perf_counter() - started

        ticks = [Tick(key, ltp, at=AT) for key, ltp in work.ticks]
        fired = []
        gc.collect()
        started = time.perf_counter()
        for i in range(min(single_ticks, len(ticks))):
            fired.extend(broker.apply_ticks([ticks[i]]))
        single_s = time.perf_counter() - started
        rest = ticks[single_ticks:]
        started = time.perf_counter()
        for at in range(0, len(rest), batch):
            fired.extend(broker.apply_ticks(rest[at:at + batch]))
        batch_s = time.perf_counter() - started

        gc.collect()
        started = time.perf_counter()
        SandboxBroker(SandboxRepository(make_session_factory(db)), clock=lambda: AT)  # a restart: rebuild from the tables
        reload_s = time.perf_counter() - started
        close_all_sessions()
        db.dispose()
    return {
        "place_s": place_s, "single_s": single_s, "single_ticks": min(single_ticks, len(ticks)),
        "batch_s": batch_s, "batch_ticks": len(rest), "reload_s": reload_s,
        "fired": sorted((ids[e.gtt_id], e.strategy, e.price) for e in fired),
    }


# --- report -------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gtts", type=int, default=10_000)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument("--naive-ticks", type=int, default=3_000, help="ticks for the plain scan (it is slow)")
    parser.add_argument("--single-ticks", type=int, default=2_000, help="end to end: ticks sent one per call")
    parser.add_argument("--batch", type=int, default=100, help="end to end: ticks per apply_ticks call after that")
    parser.add_argument("--no-db", action="store_true", help="skip the end-to-end SQLite part")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    work = workload(args.gtts, args.instruments, args.ticks, args.seed)
    naive_ticks = min(args.naive_ticks, args.ticks)

    full_s, full_fired = run_indexed(work, args.ticks)
    prefix_s, prefix_fired = run_indexed(work, naive_ticks)
    naive_s, naive_fired = run_naive(work, naive_ticks)
    if sorted(prefix_fired) != sorted(naive_fired):
        print("MISMATCH: the indexed engine and the plain scan fired different rules", file=sys.stderr)
        return 1
    speedup = (naive_ticks / prefix_s) / (naive_ticks / naive_s)

    rows = [
        ("indexed engine (memory), full stream", args.ticks, full_s, len(full_fired)),
        (f"indexed engine (memory), first {naive_ticks:,}", naive_ticks, prefix_s, len(prefix_fired)),
        (f"plain scan (memory), first {naive_ticks:,}", naive_ticks, naive_s, len(naive_fired)),
    ]
    results = {
        "gtts": args.gtts, "rules": work.rules, "instruments": args.instruments, "ticks": args.ticks,
        "indexed_ticks_per_s": round(args.ticks / full_s),
        "indexed_us_per_tick": round(full_s / args.ticks * 1e6, 2),
        "indexed_fires": len(full_fired),
        "naive_ticks": naive_ticks,
        "indexed_prefix_ticks_per_s": round(naive_ticks / prefix_s),
        "naive_ticks_per_s": round(naive_ticks / naive_s),
        "speedup_same_ticks": round(speedup, 1),
        "indexed_matches_naive": True,
    }

    if not args.no_db:
        e2e = run_end_to_end(work, args.single_ticks, args.batch)
        expected = sorted((n, strategy, price) for _, n, strategy, price in full_fired)
        if e2e["fired"] != expected:
            print("MISMATCH: apply_ticks with SQLite fired differently from the engine core", file=sys.stderr)
            return 1
        rows += [
            ("place_gtt + SQLite (places)", args.gtts, e2e["place_s"], None),
            ("apply_ticks + SQLite, 1 tick per call", e2e["single_ticks"], e2e["single_s"], None),
            (f"apply_ticks + SQLite, {args.batch} ticks per call", e2e["batch_ticks"], e2e["batch_s"], None),
        ]
        results.update({
            "sqlite_places_per_s": round(args.gtts / e2e["place_s"]),
            "sqlite_ticks_per_s_single": round(e2e["single_ticks"] / e2e["single_s"]) if e2e["single_ticks"] else None,
            "sqlite_ticks_per_s_batched": round(e2e["batch_ticks"] / e2e["batch_s"]) if e2e["batch_ticks"] else None,
            "sqlite_batch": args.batch,
            "sqlite_restart_reload_s": round(e2e["reload_s"], 3),
            "sqlite_fires": len(e2e["fired"]),
            "sqlite_matches_engine": True,
        })
    results.update({"python": platform.python_version(), "platform": platform.platform(terse=True)})

    print(f"sandbox triggers: {args.gtts:,} GTTs ({work.rules:,} rules) on {args.instruments:,} instruments, "
          f"{args.ticks:,} ticks")
    print(f"  {'measure':<44} {'count':>9} {'seconds':>9} {'per second':>12} {'fires':>7}")
    for label, count, seconds, fires in rows:
        print(f"  {label:<44} {count:>9,} {seconds:>9.3f} {count / seconds:>12,.0f} "
              f"{'' if fires is None else format(fires, ','):>7}")
    print(f"  plain scan and indexed engine fired the same {len(naive_fired):,} rules; "
          + ("SQLite run fired the same as the engine core; " if not args.no_db else "")
          + f"speedup on the same ticks: {speedup:,.1f}x "
          + f"(target >= {MIN_SPEEDUP:.0f}x: {'OK' if speedup >= MIN_SPEEDUP else 'MISSED'})")
    if not args.no_db:
        print(f"  restart: a new SandboxBroker rebuilt its index from SQLite in "
              f"{results['sqlite_restart_reload_s']:.3f} s")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
