"""Logging for every entry point: the command line (cli/) and the WSGI application (wsgi.py).

Its own module so the WSGI application does not import the command line to get it. Also the
two ways a line that a caller can cause again and again is kept to one a minute
(`EveryInterval` for the project's own lines, `RepeatFilter` for a library's logger), and the
filter that keeps secrets out of every line (`SecretFilter`, logging_secrets.py).
"""
from __future__ import annotations

import logging
import sys
import threading
import time

from openalgo_gtt.logging_secrets import SecretFilter, install_secret_filter  # noqa: F401 - re-exported


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Alembic announces every plugin at INFO; only its warnings matter to someone starting a server.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    install_secret_filter()


class _Tally:
    """When each key last got a line, and how many were left out since (thread-safe)."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[object, tuple[float, int]] = {}

    def admit(self, key) -> int | None:
        """None when `key` had a line within the interval (this one is counted and left out),
        else how many were left out since its last line."""
        now = self._clock()
        with self._lock:
            last, left_out = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.seconds:
                self._seen[key] = (last, left_out + 1)
                return None
            if len(self._seen) > 10_000:  # keys are message templates: a few dozen in practice
                self._seen.clear()
            self._seen[key] = (now, 0)
            return left_out


class EveryInterval:
    """A logger's lines, each kind (`key`) at most once per `seconds`; the next line of a kind
    says how many of it were left out. For lines a caller can cause on every request."""

    def __init__(self, logger: logging.Logger, seconds: float = 60.0, clock=time.monotonic):
        self._logger = logger
        self._tally = _Tally(seconds, clock)

    def log(self, level: int, key, message: str, *args, exc_info=None) -> bool:
        left_out = self._tally.admit(key)
        if left_out is None:
            return False
        if left_out:
            message += f" ({left_out} more like this in the last {self._tally.seconds:.0f} s)"
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, key, message: str, *args, **kwargs) -> bool:
        return self.log(logging.WARNING, key, message, *args, **kwargs)

    def error(self, key, message: str, *args, **kwargs) -> bool:
        return self.log(logging.ERROR, key, message, *args, **kwargs)


class RepeatFilter(logging.Filter):
    """A logging filter: each message template of the logger it is on passes at most once per
    `seconds`; the next one that passes carries the count of those dropped."""

    def __init__(self, seconds: float = 60.0, clock=time.monotonic):
        super().__init__()
        self._tally = _Tally(seconds, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        left_out = self._tally.admit((record.name, record.levelno, str(record.msg)))
        if left_out is None:
            return False
        if left_out:
            record.msg = f"{record.getMessage()} ({left_out} more like this in the last {self._tally.seconds:.0f} s)"
            record.args = None
        return True
