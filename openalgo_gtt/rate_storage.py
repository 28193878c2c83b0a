"""The `limits` storages behind every rate window of the service: the order pacer, the caller
rate limits and the failed-key throttle.

`memory://` is served by `SweptMemoryStorage`: limits' own MemoryStorage, except that its
expired entries are swept by one long-lived daemon thread. The stock storage sweeps with a
10 ms `threading.Timer` that it starts again on the first hit after every idle 10 ms, so at a
trader's pace (an alert every few hundred milliseconds) each place started, and waited for, a
new thread per storage it touched (the caller limits' and the pacer's) on its way to Upstox.
Counting is untouched: every window check reads the entries' times, so the sweep only bounds
memory. Other URIs (Redis) go to `limits` unchanged.

This reaches into limits' internals (the name-mangled expiry pass, and the `timer` attribute the
stock storage checks before starting a new Timer). `bench/bench_rate_storage.py` measures what it
saves against the stock storage; tests/unit/test_rate_storage.py fails, naming the internal, when a
limits release changes any of it.
"""
from __future__ import annotations

import logging
import threading
import weakref

from limits.storage import MemoryStorage, Storage, storage_from_string

log = logging.getLogger(__name__)

SWEPT_SCHEME = "openalgo-memory"
SWEEP_SECONDS = 1.0


class _Sweeper(threading.Thread):
    """One daemon thread for the whole process: every SWEEP_SECONDS it runs the expiry pass of
    each live swept storage. Storages are held weakly, so a discarded one simply drops out; a
    process that builds many (a test suite, one per app) still has one thread, not one each."""

    def __init__(self, interval: float):
        super().__init__(name="rate-window-sweeper", daemon=True)
        self._interval = interval
        self._storages: "weakref.WeakSet[SweptMemoryStorage]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self._tick = threading.Event()  # never set: its wait() is the pause between sweeps

    def add(self, storage: "SweptMemoryStorage") -> None:
        with self._lock:
            self._storages.add(storage)

    def discard(self, storage: "SweptMemoryStorage") -> None:
        with self._lock:
            self._storages.discard(storage)

    def run(self) -> None:
        while True:
            self._tick.wait(self._interval)
            self._sweep_all()

    def _sweep_all(self) -> None:
        """One pass. Its own frame, so that nothing it held (the batch, the loop's last storage)
        outlives it: a storage referenced between passes would never be freed."""
        with self._lock:
            storages = list(self._storages)
        for storage in storages:
            try:
                storage.sweep()
            except Exception:  # noqa: BLE001 - a failed sweep only delays freeing memory
                log.exception("rate window sweep failed")


_sweeper: _Sweeper | None = None
_sweeper_lock = threading.Lock()


def _shared_sweeper() -> _Sweeper:
    global _sweeper
    with _sweeper_lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = _Sweeper(SWEEP_SECONDS)
            _sweeper.start()
        return _sweeper


class _SweptTimer:
    """What a swept storage keeps in its `timer` attribute: MemoryStorage starts a new Timer
    only when that one is not alive, and this one always is (until cancelled)."""

    def __init__(self, storage: "SweptMemoryStorage"):
        self._storage = weakref.ref(storage)
        self._cancelled = False
        _shared_sweeper().add(storage)

    def is_alive(self) -> bool:
        return not self._cancelled

    def cancel(self) -> None:  # threading.Timer's name for it, which MemoryStorage may call
        self._cancelled = True
        storage = self._storage()
        if storage is not None and _sweeper is not None:
            _sweeper.discard(storage)


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage swept by the process's one sweeper thread (see the module doc)."""

    STORAGE_SCHEME = [SWEPT_SCHEME]  # registered with `limits` when this class is defined

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()  # the 10 ms Timer the parent just started
        self.timer = _SweptTimer(self)

    def sweep(self) -> None:
        """Drop expired moving-window entries and counters (the parent's expiry pass)."""
        self._MemoryStorage__expire_events()  # type: ignore[attr-defined]

    def __setstate__(self, state: dict) -> None:  # a copy (pickle) is swept too
        super().__setstate__(state)
        self.timer.cancel()
        self.timer = _SweptTimer(self)


def limits_uri(uri: str) -> str:
    """The URI to hand to `limits` for a configured storage URI."""
    if uri.startswith("memory://"):
        return SWEPT_SCHEME + uri[len("memory"):]
    return uri


def storage_for(uri: str, **options) -> Storage:
    return storage_from_string(limits_uri(uri), **options)
