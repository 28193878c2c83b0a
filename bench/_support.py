"""Shared pieces of the gateway benchmarks (bench_place_overhead, bench_book, bench_burst,
bench_startup, bench_cost): the fake Upstox in a process of its own, the real server, timing
helpers and the result rows run_all.py turns into a table.

The fake runs in a child process so that the benchmark's own client threads never compete with
it for one interpreter lock: a direct call and a call through the gateway then cross the same
process boundaries (client -> fake versus client -> gateway -> fake).
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # runnable from a plain checkout; `tests` holds the fake and the server

import requests  # noqa: E402

from tests import closing_client  # noqa: E402
from tests.e2e.server import ServerProcess  # noqa: E402
from tests.fakes.remote_upstox import DEFAULT_TOKEN as TOKEN  # noqa: E402
from tests.fakes.remote_upstox import RemoteFake  # noqa: E402,F401 - the benches import it from here

closing_client.install()  # in-process benches see the work a place does after its answer

IDEA_SYMBOL, IDEA_EXCHANGE, IDEA_KEY = "IDEA", "NSE", "NSE_EQ|INE669E01016"  # in the bundled sample master
PEPPER = "bench-pepper-" + "z" * 32


# ----- the real server -------------------------------------------------------------------------------


class BenchServer(ServerProcess):
    """tests/e2e/server.py's ServerProcess (`python run.py` in a working directory of its own)
    with a finer health poll, so the spawn-to-health time is measured to ~10 ms."""

    spawn_to_health_s: float | None = None
    command: list[str] | None = None  # what serves; None is `python run.py` (bench_server_settings sets others)

    def start(self, timeout: float = 60.0) -> BenchServer:
        import subprocess

        command = self.command or [sys.executable, str(REPO / "run.py")]
        with open(self.output_path, "ab") as log:  # the child keeps its own copy of the descriptor
            started = time.perf_counter()
            self.process = subprocess.Popen(command, cwd=self.workdir, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/api/health", timeout=1).status_code in (200, 503):
                    self.spawn_to_health_s = time.perf_counter() - started
                    return self
            except requests.RequestException:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.output()}")

    def create_key(self, name: str = "bench") -> str:
        return self.cli("apikey", "create", name).stdout.strip().splitlines()[-1]


def gateway_env(fake: RemoteFake, **extra: str) -> dict[str, str]:
    env = {
        "ACCESS_TOKEN": fake.token,
        "UPSTOX_API_URL": fake.url,
        "DAILY_TRADE_LIMIT": "1000000",
        "OCO_POLL_SECONDS": "600",
        "LOG_LEVEL": "WARNING",
        "API_KEY_PEPPER": PEPPER,
    }
    env.update(extra)
    return env


@contextmanager
def gateway(fake: RemoteFake, prefix: str, command: list[str] | None = None,
            **extra: str) -> Iterator[tuple[BenchServer, str]]:
    """A fresh SQLite database in a temporary directory, `python run.py` (or `command`, run in the
    server's working directory) against the fake, and an API key made with the CLI; the server is
    always stopped."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as tmp:
        server = BenchServer(Path(tmp) / "srv", f"sqlite:///{Path(tmp) / 'gateway.db'}", **gateway_env(fake, **extra))
        server.command = command
        try:
            key = server.create_key()
            server.start()
            yield server, key
        finally:
            server.stop()


# ----- request bodies ---------------------------------------------------------------------------------


def place_body(key: str, price: str) -> dict:
    """An OpenAlgo SINGLE place (what a TradingView alert or the SDK sends)."""
    return {"apikey": key, "symbol": IDEA_SYMBOL, "exchange": IDEA_EXCHANGE, "action": "BUY", "quantity": 1,
            "trigger_type": "SINGLE", "product": "CNC", "triggerprice_tg": price, "price": price}


def upstox_body(price: str) -> dict:
    """The Upstox v3 body the gateway sends for place_body(price)."""
    return {"type": "SINGLE", "quantity": 1, "product": "D", "instrument_token": IDEA_KEY, "transaction_type": "BUY",
            "rules": [{"strategy": "ENTRY", "trigger_type": "ABOVE", "trigger_price": float(price)}]}


def upstox_headers(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


class Prices:
    """Distinct tick-aligned trigger prices (IDEA ticks 0.01), so no two places are identical:
    the gateway may answer a repeated body from one key as a duplicate without a broker call."""

    def __init__(self, start_paise: int = 1000):
        self._next = start_paise

    def next(self) -> str:
        paise, self._next = self._next, self._next + 1
        return f"{paise // 100}.{paise % 100:02d}"


# ----- numbers and rows ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def row(metric: str, value: Any, target: str = "", ok: bool | None = None) -> dict:
    return {"metric": metric, "value": value, "target": target,
            "status": "" if ok is None else ("OK" if ok else "MISSED")}


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most timestamps in any half-open window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i in range(len(times)):
        while j < len(times) and times[j] < times[i] + window:
            j += 1
        best = max(best, j - i)
    return best


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "python": platform.python_version(), "os": platform.platform(terse=True)}


def rss_kb(pid: int) -> dict[str, int | None]:
    """Resident memory of a process: psutil when installed, else /proc/<pid>/status."""
    try:
        import psutil  # type: ignore

        info = psutil.Process(pid).memory_info()
        return {"rss_kb": info.rss // 1024, "hwm_kb": None}
    except ImportError:
        pass
    out: dict[str, int | None] = {"rss_kb": None, "hwm_kb": None}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                out["hwm_kb"] = int(line.split()[1])
    except OSError:
        pass
    return out


def standalone(run, argv=None) -> int:
    """`python bench/bench_x.py [--quick] [--out FILE]` for one benchmark."""
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(f"{result['title']}")
    for r in result["rows"]:
        print(f"  {r['metric']:<58} {r['value']!s:>14}  {r['target']:<14} {r['status']}")
    for note in result.get("notes", []):
        print(f"  note: {note}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0
