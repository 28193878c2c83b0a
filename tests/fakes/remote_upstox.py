"""The fake Upstox (fake_upstox.py) served from a child process of its own, driven through a pipe.

Used where the fake's clock must not share an interpreter lock with a busy client: the benchmarks,
and the tests that count when calls arrive (with hundreds of client threads in the test's process,
an in-process fake would stamp arrivals late and bunch them up)."""
from __future__ import annotations

import multiprocessing
from typing import Any

DEFAULT_TOKEN = "remote-fake-token"


def _fake_main(conn, token: str, latency: float) -> None:
    from tests.fakes.fake_upstox import FakeUpstox

    fake = FakeUpstox(token=token, latency=latency).start()
    conn.send(fake.url)
    try:
        while True:
            try:
                name, args, kwargs = conn.recv()
            except EOFError:
                break
            if name == "stop":
                break
            try:
                if name == "set_latency":
                    fake.latency = float(args[0])
                    result = None
                elif name == "calls":
                    with fake._lock:
                        result = list(fake.calls)
                elif name == "gtt_count":
                    result = len(fake.gtts())
                else:
                    result = getattr(fake, name)(*args, **kwargs)
                conn.send(("ok", result))
            except Exception as exc:  # noqa: BLE001 - sent back to the benchmark
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        fake.stop()


class RemoteFake:
    """tests.fakes.fake_upstox.FakeUpstox served from a child process, driven through a pipe.

    `calls()` returns the fake's (method, path, time.monotonic()) list; CLOCK_MONOTONIC is
    system-wide on Linux, so its times compare with this process's time.monotonic()."""

    def __init__(self, latency: float = 0.0, token: str = DEFAULT_TOKEN):
        self.token = token
        self._latency = latency
        self._process = None
        self._conn = None
        self.url = ""

    def start(self) -> RemoteFake:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._process = ctx.Process(target=_fake_main, args=(child, self.token, self._latency),
                                    name="fake-upstox", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        if not parent.poll(60):
            self.stop()
            raise RuntimeError("the fake Upstox process did not start within 60 s")
        self.url = parent.recv()
        return self

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((name, args, kwargs))
        if not self._conn.poll(60):
            raise RuntimeError(f"the fake Upstox process did not answer {name}")
        status, result = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"fake.{name}: {result}")
        return result

    def set_latency(self, seconds: float) -> None:
        self._call("set_latency", seconds)

    def set_price(self, *args: Any, **kwargs: Any) -> None:
        self._call("set_price", *args, **kwargs)

    def calls(self) -> list[tuple[str, str, float]]:
        return self._call("calls")

    def calls_to(self, route: str) -> list[tuple[str, str, float]]:
        return self._call("calls_to", route)

    def clear_calls(self) -> None:
        self._call("clear_calls")

    def gtt_count(self) -> int:
        return self._call("gtt_count")

    def gtts(self) -> list[dict]:
        return self._call("gtts")

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(("stop", (), {}))
            except (OSError, ValueError):
                pass
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=10)
            self._process = None

    def __enter__(self) -> RemoteFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
