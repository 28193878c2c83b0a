"""Place overhead: what the gateway adds to one SINGLE place on top of Upstox's own latency.

The fake Upstox answers after `latency`; the real server (`python run.py`) runs against it. N
SINGLE places through the gateway (POST /api/v1/placegtt) are interleaved with N of the same
place sent straight to the fake (POST /v3/order/gtt/place, the Upstox body the gateway sends),
each with a distinct trigger price and a persistent requests.Session, alternating which goes
first. The fake's latency applies to the gateway's broker call too, so the gateway's time is
the broker's plus the overhead. A third series goes through bench/thin_proxy.py, the thinnest
proxy possible (waitress, one requests call, nothing else): the floor of one Python HTTP hop on
this machine, which tells the hop's own cost from the gateway's work.

The three go one after another (each first, second and third in turn), a round every 200 ms:
the gateway paces order calls to Upstox's limits (10/s, 500/minute), and a caller going faster
would measure the pacer's waiting rather than the gateway's work. Alerts arrive with idle time
between them, and so do these: each call meets the caches as a real alert does.

    python bench/bench_place_overhead.py [--quick] [--out FILE]
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402

from _support import (  # noqa: E402
    Prices, RemoteFake, gateway, median, ms, pct, place_body, row, standalone, upstox_body, upstox_headers,
)

PACE_S = 0.2  # one place each way every 200 ms: 5/s, under 10/s and 500/minute, with idle time between
WARMUP = 5
TARGETS = {0.05: {"median": 1.10, "p95": 1.20}, 0.0: {"median": 2.5}}


THIN_PROXY_THREADS = 8  # the gateway's SERVER_THREADS default


@contextmanager
def thin_proxy(fake: RemoteFake):
    """bench/thin_proxy.py on a free port, against the fake; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("thin_proxy.py")), str(port),
                                fake.url, fake.token, str(THIN_PROXY_THREADS)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the thin proxy did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _series(server_url: str, thin_url: str, fake: RemoteFake, key: str, n: int, prices: Prices) -> dict:
    gw, direct, thin = requests.Session(), requests.Session(), requests.Session()
    gw_url = f"{server_url}/api/v1/placegtt"
    fake_url = f"{fake.url}/v3/order/gtt/place"
    headers = upstox_headers(fake.token)

    def through_gateway() -> float:
        body = place_body(key, prices.next())
        started = time.perf_counter()
        response = gw.post(gw_url, json=body, timeout=30)
        took = time.perf_counter() - started
        answer = response.json()
        if response.status_code != 200 or answer.get("status") != "success" or answer.get("warnings"):
            raise RuntimeError(f"gateway place failed: {response.status_code} {answer}")
        return took

    def through_thin_proxy() -> float:
        body = place_body(key, prices.next())
        started = time.perf_counter()
        response = thin.post(thin_url, json=body, timeout=30)
        took = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"thin proxy place failed: {response.status_code} {response.text[:200]}")
        return took

    def straight() -> float:
        body = upstox_body(prices.next())
        started = time.perf_counter()
        response = direct.post(fake_url, json=body, headers=headers, timeout=30)
        took = time.perf_counter() - started
        if response.status_code != 200 or response.json().get("status") != "success":
            raise RuntimeError(f"direct place failed: {response.status_code} {response.text[:200]}")
        return took

    series = [(through_gateway, []), (straight, []), (through_thin_proxy, [])]
    try:
        for _ in range(WARMUP):  # connections, the key's argon2 check, caches, the instrument index
            slot = time.perf_counter()
            for send, _times in series:
                send()
            time.sleep(max(0.0, slot + PACE_S - time.perf_counter()))
        fake.clear_calls()
        for i in range(n):
            slot = time.perf_counter()
            for send, times in series[i % 3:] + series[:i % 3]:  # each goes first, second and third in turn
                times.append(send())
            time.sleep(max(0.0, slot + PACE_S - time.perf_counter()))
        broker_places = len(fake.calls_to("gtt.place"))
    finally:
        gw.close()
        direct.close()
        thin.close()
    gw_times, direct_times, thin_times = (times for _send, times in series)
    return {
        "n": n,
        "gateway_median_ms": ms(median(gw_times)), "gateway_p95_ms": ms(pct(gw_times, 95)),
        "direct_median_ms": ms(median(direct_times)), "direct_p95_ms": ms(pct(direct_times, 95)),
        "median_ratio": round(median(gw_times) / median(direct_times), 3),
        "p95_ratio": round(pct(gw_times, 95) / pct(direct_times, 95), 3),
        "median_overhead_ms": ms(median(gw_times) - median(direct_times)),
        "gateway_max_ms": ms(max(gw_times)), "direct_max_ms": ms(max(direct_times)),
        "thin_median_ms": ms(median(thin_times)), "thin_p95_ms": ms(pct(thin_times, 95)),
        "thin_median_ratio": round(median(thin_times) / median(direct_times), 3),
        "gateway_over_thin_ms": ms(median(gw_times) - median(thin_times)),
        "broker_place_calls": broker_places,  # 3n: the gateway's, the direct ones, the thin proxy's
    }


def run(quick: bool = False, **server_env: str) -> dict:
    n = 40 if quick else 200
    prices = Prices(1000)
    phases = {}
    with RemoteFake(latency=0.05) as fake, gateway(fake, "place", **server_env) as (server, key), \
            thin_proxy(fake) as thin_url:
        for latency in (0.05, 0.0):
            fake.set_latency(latency)
            phases[latency] = _series(server.url, thin_url, fake, key, n, prices)

    rows = []
    for latency, data in phases.items():
        label = f"fake latency {latency * 1000:.0f} ms"
        target = TARGETS[latency]
        rows += [
            row(f"{label}: direct median / p95 (ms)", f"{data['direct_median_ms']} / {data['direct_p95_ms']}"),
            row(f"{label}: gateway median / p95 (ms)", f"{data['gateway_median_ms']} / {data['gateway_p95_ms']}"),
            row(f"{label}: gateway median / direct median", data["median_ratio"], f"<= {target['median']}x",
                data["median_ratio"] <= target["median"]),
        ]
        if "p95" in target:
            rows.append(row(f"{label}: gateway p95 / direct p95", data["p95_ratio"], f"<= {target['p95']}x",
                            data["p95_ratio"] <= target["p95"]))
        rows.append(row(f"{label}: median overhead (ms)", data["median_overhead_ms"]))
        rows.append(row(f"{label}: floor, thin proxy median (ms) / vs direct",
                        f"{data['thin_median_ms']} / {data['thin_median_ratio']}x"))
        rows.append(row(f"{label}: gateway's own work, median over the thin proxy (ms)",
                        data["gateway_over_thin_ms"]))
        if data["broker_place_calls"] != 3 * data["n"]:
            rows.append(row(f"{label}: broker place calls", data["broker_place_calls"], f"== {3 * data['n']}", False))
    return {
        "title": f"Place overhead (SINGLE place, {n} through the gateway interleaved with {n} direct and {n} "
                 f"through a thin proxy, paced at {1 / PACE_S:.0f}/s)",
        "rows": rows,
        "data": {f"latency_{int(latency * 1000)}ms": data for latency, data in phases.items()},
    }


if __name__ == "__main__":
    sys.exit(standalone(run))
