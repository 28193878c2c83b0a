"""What one Upstox call costs this process: `Session.request` against a prepared request sent
through the pooled adapter (both public requests APIs). Session.request merges session settings
on every call (headers, params, hooks, cookies, environment): several runtime Protocol checks
in requests 2.33+ and a cookie jar walk, none of which this client uses.

CPU time of this process only (time.process_time), per list call to the fake Upstox in a child
process, the two ways interleaved in rounds so that a busy machine slows both alike.

    python bench/bench_http_send.py [--calls 300] [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import RemoteFake  # noqa: E402

from openalgo_gtt.brokers import upstox  # noqa: E402 - UpstoxBroker's transport is brokers/http.py


class ThroughSessionRequest(upstox.UpstoxBroker):
    """The client as it was: every call through Session.request."""

    def _send(self, method, url, headers, auth, data, is_write, timeout):
        return self._session.request(method, url, headers=headers, auth=auth, data=data, stream=True,
                                     allow_redirects=False, timeout=(timeout, timeout))


def cpu_per_call(broker, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        broker.list_gtts()
    return (time.process_time() - started) / calls * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    fake = RemoteFake().start()
    try:
        prepared = upstox.UpstoxBroker(fake.url, fake.token, timeout=5, pacer=None)
        session = ThroughSessionRequest(fake.url, fake.token, timeout=5, pacer=None)
        for broker in (prepared, session):
            cpu_per_call(broker, 30)  # warm the pools
        results = {"Session.request": [], "prepared + adapter": []}
        for _ in range(args.rounds):
            results["Session.request"].append(cpu_per_call(session, args.calls))
            results["prepared + adapter"].append(cpu_per_call(prepared, args.calls))
    finally:
        fake.stop()
    for name, values in results.items():
        print(f"{name:22s} median {statistics.median(values):.3f} ms CPU per call "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
