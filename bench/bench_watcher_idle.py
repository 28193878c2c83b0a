"""The gateway's idle CPU with many live GTTs (issue 14 §6): nothing changes at the broker, so
the watcher's poll (one list call every OCO_POLL_SECONDS, compared in memory, nothing written)
is all the process does.

For each size (30, 300 and 3,000 live SINGLE GTTs) the fake Upstox, in a child process of its
own so its work is not counted, holds the GTTs and the gateway's database records them. The
gateway (built in this process, as `python run.py` builds it, its watcher started) is left to
settle for one poll, then this process's CPU time (time.process_time: every thread) is measured
over a window of wall time. The target: at most 3% of one core at 300.

    python bench/bench_watcher_idle.py [--quick] [--window SECONDS]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import IDEA_KEY, PEPPER, RemoteFake  # noqa: E402

SIZES = (30, 300, 3000)
TARGET_PCT_AT_300 = 3.0
POLL_SECONDS = 2.0  # OCO_POLL_SECONDS's default


def _populate(fake: RemoteFake, gateway, count: int) -> None:
    """`count` live SINGLE GTTs at the fake, each recorded by the gateway as a place would."""
    from openalgo_gtt.domain.clock import utcnow

    orders = []
    for i in range(count):
        price = f"{9.61 + (i % 300) / 100:.2f}"
        body = {"type": "SINGLE", "quantity": 1, "product": "D", "instrument_token": IDEA_KEY,
                "transaction_type": "BUY",
                "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": float(price)}]}
        (gtt_id,) = fake._call("_do_gtt_place", {}, json.dumps(body).encode())["gtt_order_ids"]
        orders.append(dict(
            trigger_id=gtt_id, broker_ids=[gtt_id], instrument_key=IDEA_KEY, symbol="IDEA", exchange="NSE",
            trigger_type="single", action="BUY", product="CNC", quantity=1, strategy="bench", status="active",
            legs=[{"role": "entry", "action": "BUY", "trigger_type": "ABOVE", "trigger_price": price}],
            placed_at=utcnow(), request_id=f"bench-{i}", api_key_name="bench"))
    with gateway.store.unit_of_work() as uow:
        for order in orders:
            uow.add_trigger(order, [])


def measure(count: int, window: float) -> dict:
    from openalgo_gtt.config import Settings
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.instruments import ensure_instruments
    from openalgo_gtt.store.migrate import upgrade

    with RemoteFake() as fake, tempfile.TemporaryDirectory(prefix="bench-watcher-") as tmp:
        fake.set_price(IDEA_KEY, "IDEA", "NSE_EQ", "9.50", open="10.00")
        settings = Settings(database_url=f"sqlite:///{tmp}/gtt.db", data_dir=Path(tmp), api_key_pepper=PEPPER,
                            broker="upstox", upstox_api_url=fake.url, access_token=fake.token,
                            oco_poll_seconds=POLL_SECONDS)
        upgrade(settings.database_url)
        gateway = Gateway.build(settings)
        try:
            ensure_instruments(gateway.engine)
            _populate(fake, gateway, count)
            gateway.start_watching()
            time.sleep(POLL_SECONDS + 0.5)  # the lease taken, one poll done: from here on it is idle
            fake.clear_calls()
            wall0, cpu0 = time.perf_counter(), time.process_time()
            time.sleep(window)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            polls = len(fake.calls_to("gtt.details"))
        finally:
            gateway.close()
    return {"gtts": count, "cpu_pct": 100 * cpu / wall, "window_s": wall, "polls": polls,
            "cpu_ms_per_poll": 1000 * cpu / polls if polls else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 4 s window per size instead of 10 s")
    parser.add_argument("--window", type=float, help="seconds measured per size")
    args = parser.parse_args()
    window = args.window or (4.0 if args.quick else 10.0)
    print(f"idle gateway CPU, watcher polling every {POLL_SECONDS:g} s, nothing changing ({window:g} s per size)")
    print(f"{'live GTTs':>9}  {'% of a core':>11}  {'polls':>5}  {'CPU ms/poll':>11}")
    for count in SIZES:
        result = measure(count, window)
        print(f"{result['gtts']:>9}  {result['cpu_pct']:>11.2f}  {result['polls']:>5}  {result['cpu_ms_per_poll']:>11.1f}")
        if count == 300:
            verdict = "met" if result["cpu_pct"] <= TARGET_PCT_AT_300 else "MISSED"
            print(f"           target <= {TARGET_PCT_AT_300:g}% at 300: {verdict}")


if __name__ == "__main__":
    main()
