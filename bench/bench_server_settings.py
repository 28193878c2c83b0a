"""Which production server settings to ship (issue 8), measured on this machine: waitress thread
counts for `python run.py`, and gunicorn workers x threads for gunicorn.conf.py on Linux.

The server only shapes the part of a request the app does not: accepting the connection,
parsing HTTP, handing the request to a thread or a process, writing the answer; and, with more
than one process, the Redis round trips that keep the processes' windows shared. So every
configuration below serves the same app against a fresh fake Upstox and is measured alike:

- place latency: SINGLE places through the gateway interleaved with the same place sent
  straight to a second fake (the "direct" baseline: the same HTTP hop without the gateway),
  paced at 8/s as in bench_place_overhead, with the fakes answering at 0 ms and at 50 ms
  (targets: at 0 ms median <= 2.5x direct; at 50 ms <= 1.1x). Interleaving makes the ratio
  steadier than the milliseconds, which move with the machine;
- order book throughput: 8 clients on POST /api/v1/gttorderbook (the 50 GTTs placed by the
  first 0 ms series) against the same 8 clients on the fake's GET /v3/order/gtt, as in
  bench_book (target >= 0.3x the fake): where more threads or processes could pay off. On two
  cores the clients and the fake take part of the CPU the server would have in production;
- health: sequential GET /api/health on one connection, a light answer (one SQLite read).

Configurations (full run, about four minutes; --quick runs three, shorter):

- waitress as `python run.py` starts it, SERVER_THREADS 4, 8 (the default) and 16;
- waitress at 8 threads with the two waitress 3.0.2 options that could plausibly change
  per-request latency (asyncore_use_poll, channel_request_lookahead), through a launcher
  that runs run.py's `serve` with them added to its waitress.serve call; connection_limit
  (100) and the buffer sizes are not tried: 9 connections never reach the limit and the
  answers are small;
- gunicorn with gunicorn.conf.py (started as tests/e2e/test_gunicorn.py starts it),
  worker_class gthread, workers x threads 1x4, 1x8, 2x4, 2x8, and 1x8 with Redis (to tell
  what Redis costs from what a second process costs);
- gunicorn's sync worker class, 4 workers (one request per process at a time, no keep-alive).

More than one worker process shares the caller limits and the order pacer through Redis
(RATE_LIMIT_STORAGE_URI, default redis://127.0.0.1:6379/0, BENCH_REDIS_URI to change it; the
pacer's 30-minute window gets an amount of its own per run, as the gunicorn e2e test does, so
back-to-back runs do not use up each other's 2000). One process keeps the default memory://
storage. All the processes of a configuration share one SQLite file.

The machine is shared: each configuration records the 1-minute load average before and after,
and the hash of the app code it ran (engineers edit openalgo_gtt/ meanwhile: a run whose
configurations saw different code says so in its notes). --configs runs the named ones in the
order given (reverse the list to check for drift; a name may repeat).

    python bench/bench_server_settings.py [--quick] [--out FILE] [--configs NAME ...]
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402

import bench_book  # noqa: E402
from _support import (  # noqa: E402
    IDEA_KEY, REPO, Prices, RemoteFake, gateway, median, ms, pct, place_body, row, standalone, upstox_body,
    upstox_headers,
)

PACE_S = 0.125  # one place each way every 125 ms (8/s): under the gateway's pacer, as bench_place_overhead
REDIS_URI = os.environ.get("BENCH_REDIS_URI", "redis://127.0.0.1:6379/0")

# `python run.py serve` with extra keyword arguments for its waitress server (cli/waitress_server.py
# create_server; JSON in the
# environment): the same startup as run.py, with options cli.serve does not pass today.
WAITRESS_WITH_OPTIONS = (
    "import functools, json, os\n"
    "from openalgo_gtt.cli import waitress_server as served\n"
    "served.create_server = functools.partial(served.create_server, **json.loads(os.environ['BENCH_WAITRESS_OPTIONS']))\n"
    "from openalgo_gtt.cli import cli\n"
    "cli(['serve'])\n"
)


@dataclass(frozen=True)
class Config:
    name: str
    server: str  # "waitress" or "gunicorn"
    threads: int
    workers: int = 1
    worker_class: str = "gthread"
    waitress_options: dict = field(default_factory=dict)
    redis: bool = False  # shared windows in Redis even with one process (to tell Redis's cost apart)

    @property
    def uses_redis(self) -> bool:
        return self.redis or self.workers > 1

    def command(self) -> list[str] | None:
        if self.server == "gunicorn":
            return [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"),
                    "--worker-class", self.worker_class, "openalgo_gtt.wsgi:app"]
        if self.waitress_options:
            return [sys.executable, "-c", WAITRESS_WITH_OPTIONS]
        return None  # python run.py

    def env(self, order_rates: str) -> dict[str, str]:
        env = {"ORDER_RATE_LIMITS": order_rates}
        if self.server == "gunicorn":
            env.update(WEB_CONCURRENCY=str(self.workers), GUNICORN_THREADS=str(self.threads))
        else:
            env["SERVER_THREADS"] = str(self.threads)
        if self.waitress_options:
            env["BENCH_WAITRESS_OPTIONS"] = json.dumps(self.waitress_options)
        if self.uses_redis:
            env["RATE_LIMIT_STORAGE_URI"] = REDIS_URI
        return env


CONFIGS = [
    Config("waitress-4", "waitress", 4),
    Config("waitress-8", "waitress", 8),
    Config("waitress-16", "waitress", 16),
    Config("waitress-8-poll-lookahead", "waitress", 8,
           waitress_options={"asyncore_use_poll": True, "channel_request_lookahead": 1}),
    Config("gthread-1x4", "gunicorn", 4),
    Config("gthread-1x8", "gunicorn", 8),
    Config("gthread-1x8-redis", "gunicorn", 8, redis=True),
    Config("gthread-2x4", "gunicorn", 4, workers=2),
    Config("gthread-2x8", "gunicorn", 8, workers=2),
    Config("sync-4", "gunicorn", 1, workers=4, worker_class="sync"),  # threads 1: gthread otherwise
]
QUICK_CONFIGS = ["waitress-8", "gthread-1x8", "gthread-2x4"]


@dataclass(frozen=True)
class Sizes:
    health: int  # sequential health checks
    warmup: int  # untimed place pairs before the first 0 ms series
    places_0ms: int  # timed pairs before the book: the book holds warmup + these
    more_0ms: int  # timed pairs at 0 ms after the book
    places_50ms: int
    book_seconds: float  # each side


FULL = Sizes(health=150, warmup=5, places_0ms=45, more_0ms=25, places_50ms=48, book_seconds=2.5)
QUICK = Sizes(health=30, warmup=3, places_0ms=12, more_0ms=0, places_50ms=12, book_seconds=1.0)


def _code_hash() -> str:
    digest = hashlib.sha1()
    for path in sorted((REPO / "openalgo_gtt").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def _redis_ok() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URI, socket_timeout=2).ping())
    except Exception:  # noqa: BLE001 - no Redis: the configurations that need it are skipped
        return False


class _Places:
    """Place pairs: one through the gateway (to the config's fake), one straight to the twin fake,
    alternating which goes first, each on its own persistent session, paced at 8/s."""

    def __init__(self, server_url: str, key: str, twin: RemoteFake, prices: Prices):
        self.gw, self.direct = requests.Session(), requests.Session()
        self.gw_url = f"{server_url}/api/v1/placegtt"
        self.direct_url = f"{twin.url}/v3/order/gtt/place"
        self.headers = upstox_headers(twin.token)
        self.key, self.prices = key, prices

    def _through_gateway(self) -> float:
        body = place_body(self.key, self.prices.next())
        started = time.perf_counter()
        response = self.gw.post(self.gw_url, json=body, timeout=30)
        took = time.perf_counter() - started
        answer = response.json()
        if response.status_code != 200 or answer.get("status") != "success" or answer.get("warnings"):
            raise RuntimeError(f"gateway place failed: {response.status_code} {answer}")
        return took

    def _straight(self) -> float:
        body = upstox_body(self.prices.next())
        started = time.perf_counter()
        response = self.direct.post(self.direct_url, json=body, headers=self.headers, timeout=30)
        took = time.perf_counter() - started
        if response.status_code != 200 or response.json().get("status") != "success":
            raise RuntimeError(f"direct place failed: {response.status_code} {response.text[:200]}")
        return took

    def pairs(self, n: int, warmup: int) -> tuple[list[float], list[float]]:
        gw_times, direct_times = [], []
        for i in range(warmup + n):
            slot = time.perf_counter()
            if i % 2:
                d, g = self._straight(), self._through_gateway()
            else:
                g, d = self._through_gateway(), self._straight()
            if i >= warmup:
                gw_times.append(g)
                direct_times.append(d)
            time.sleep(max(0.0, slot + PACE_S - time.perf_counter()))
        return gw_times, direct_times

    def close(self) -> None:
        self.gw.close()
        self.direct.close()


def _latency(gw: list[float], direct: list[float]) -> dict:
    return {"n": len(gw), "gateway_median_ms": ms(median(gw)), "gateway_p95_ms": ms(pct(gw, 95)),
            "direct_median_ms": ms(median(direct)), "direct_p95_ms": ms(pct(direct, 95)),
            "median_ratio": round(median(gw) / median(direct), 2),
            "median_overhead_ms": ms(median(gw) - median(direct))}


def _measure(config: Config, twin: RemoteFake, sizes: Sizes, order_rates: str) -> dict:
    """One configuration, on a fresh database and a fresh fake: warm every worker, health checks,
    places at 0 ms (their GTTs are the order book), the book both ways, more places at 0 ms,
    places at 50 ms."""
    load_before, code, started = _loadavg(), _code_hash(), time.perf_counter()
    twin.set_latency(0.0)
    with RemoteFake(latency=0.0) as fake, gateway(fake, config.name, config.command(),
                                                 RATE_LIMIT=bench_book.LIFTED_RATE_LIMIT,
                                                 **config.env(order_rates)) as (server, key):
        fake.set_price(IDEA_KEY, "IDEA", "NSE_EQ", "9.80", open="9.75")
        book_url, book_body = f"{server.url}/api/v1/gttorderbook", {"apikey": key}
        # Every worker process answers a few requests on connections of their own (the key check,
        # first-request caches) before anything is timed; the kernel spreads new connections.
        if config.workers > 1:
            time.sleep(1.5)  # the first health answer only says one worker is up
        for _ in range(8 * config.workers):
            response = requests.post(book_url, json=book_body, headers={"Connection": "close"}, timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"{config.name}: warm-up book {response.status_code} {response.text[:200]}")

        with requests.Session() as session:
            health = []
            for _ in range(sizes.health):
                t0 = time.perf_counter()
                response = session.get(f"{server.url}/api/health", timeout=30)
                health.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"{config.name}: health {response.status_code}")

        places = _Places(server.url, key, twin, Prices(1000))
        try:
            gw0, direct0 = places.pairs(sizes.places_0ms, sizes.warmup)
            gtts = sizes.warmup + sizes.places_0ms
            if fake.gtt_count() != gtts:
                raise RuntimeError(f"{config.name}: the fake holds {fake.gtt_count()} GTTs, expected {gtts}")

            fake_url, headers = f"{fake.url}/v3/order/gtt", upstox_headers(fake.token)

            def through_gateway(s: requests.Session) -> bool:
                response = s.post(book_url, json=book_body, timeout=30)
                return response.status_code == 200 and len(response.json()["data"]) == gtts

            def straight(s: requests.Session) -> bool:
                response = s.get(fake_url, headers=headers, timeout=30)
                return response.status_code == 200 and len(response.json()["data"]) == gtts

            book = bench_book._hammer(through_gateway, sizes.book_seconds)
            direct_book = bench_book._hammer(straight, sizes.book_seconds)

            if sizes.more_0ms:
                more_gw, more_direct = places.pairs(sizes.more_0ms, 2)
                gw0, direct0 = gw0 + more_gw, direct0 + more_direct
            fake.set_latency(0.05)
            twin.set_latency(0.05)
            gw50, direct50 = places.pairs(sizes.places_50ms, 2)
        finally:
            places.close()
    return {
        "config": config.name, "code": code, "seconds": round(time.perf_counter() - started, 1),
        "load_average_1min": [load_before, _loadavg()],
        "health": {"median_ms": ms(median(health)), "p95_ms": ms(pct(health, 95))},
        "place_0ms": _latency(gw0, direct0), "place_50ms": _latency(gw50, direct50),
        "book": {"gtts": gtts, "gateway": book, "direct": direct_book,
                 "ratio": round(book["rps"] / direct_book["rps"], 3) if direct_book["rps"] else 0.0},
    }


def _line(m: dict) -> str:
    """One line of progress per configuration (a full run takes minutes)."""
    p0, p50, b, health = m["place_0ms"], m["place_50ms"], m["book"], m["health"]
    return (f"{m['config']:<26} place@0 {p0['gateway_median_ms']:6.2f}/{p0['gateway_p95_ms']:6.2f} ms "
            f"({p0['median_ratio']:.2f}x of {p0['direct_median_ms']:.2f})  "
            f"place@50 {p50['gateway_median_ms']:6.2f}/{p50['gateway_p95_ms']:6.2f} "
            f"(+{p50['median_overhead_ms']:.2f})  "
            f"book {b['gateway']['rps']:6.1f} req/s ({b['ratio']:.3f}x of {b['direct']['rps']:.0f}, "
            f"p95 {b['gateway']['p95_ms']:.1f} ms)  health {health['median_ms']:.2f}/{health['p95_ms']:.2f}  "
            f"load {m['load_average_1min'][0]}->{m['load_average_1min'][1]}  {m['seconds']:.0f} s")


def run(quick: bool = False, configs: list[str] | None = None) -> dict:
    sizes = QUICK if quick else FULL
    wanted = configs or (QUICK_CONFIGS if quick else [c.name for c in CONFIGS])
    by_name = {c.name: c for c in CONFIGS}
    chosen = [by_name[name] for name in wanted]  # in the order given: reverse it to check for drift
    notes = []
    if any(c.uses_redis for c in chosen) and not _redis_ok():
        notes.append(f"no Redis at {REDIS_URI}: the configurations that need it are skipped")
        chosen = [c for c in chosen if not c.uses_redis]
    # A 30-minute amount of this run's own, so the windows kept in Redis start empty.
    order_rates = f"10/second;500/minute;{3000 + uuid.uuid4().int % 1000}/30 minutes"

    measured = []
    with RemoteFake(latency=0.0) as twin:
        for config in chosen:
            measured.append(_measure(config, twin, sizes, order_rates))
            print("  " + _line(measured[-1]), flush=True)

    rows = []
    for m in measured:
        name, p0, p50, b = m["config"], m["place_0ms"], m["place_50ms"], m["book"]
        rows += [
            row(f"{name}: place @0 ms median / p95 ms (x direct)",
                f"{p0['gateway_median_ms']} / {p0['gateway_p95_ms']} ({p0['median_ratio']}x)"),
            row(f"{name}: place @50 ms median / p95 ms (overhead)",
                f"{p50['gateway_median_ms']} / {p50['gateway_p95_ms']} (+{p50['median_overhead_ms']})"),
            row(f"{name}: book req/s (x fake)", f"{b['gateway']['rps']} ({b['ratio']}x)"),
            row(f"{name}: health median / p95 ms", f"{m['health']['median_ms']} / {m['health']['p95_ms']}"),
        ]
    book_errors = {m["config"]: (m["book"]["gateway"]["errors"], m["book"]["direct"]["errors"]) for m in measured
                   if m["book"]["gateway"]["errors"] or m["book"]["direct"]["errors"]}
    if book_errors:
        notes.append(f"order book errors (gateway, direct): {book_errors}")
    codes = sorted({m["code"] for m in measured})
    if len(codes) > 1:
        notes.append(f"the app code changed during the run ({', '.join(codes)}): compare with care")
    direct0 = [m["place_0ms"]["direct_median_ms"] for m in measured]
    if direct0:
        notes.append(f"direct place median at 0 ms across configurations: {min(direct0)}-{max(direct0)} ms")
    notes.append(f"{sizes.places_0ms + sizes.more_0ms} place pairs at 0 ms and {sizes.places_50ms} at 50 ms, "
                 f"book {sizes.book_seconds:g} s each side with {sizes.warmup + sizes.places_0ms} GTTs, "
                 f"{sizes.health} health checks per configuration")
    return {"title": f"Server settings ({len(measured)} configurations{', quick' if quick else ''})",
            "rows": rows, "notes": notes, "data": {"sizes": sizes.__dict__, "configs": measured}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--configs", nargs="+", choices=[c.name for c in CONFIGS])
    args, rest = parser.parse_known_args(argv)
    return standalone(functools.partial(run, configs=args.configs), rest)


if __name__ == "__main__":
    sys.exit(main())
