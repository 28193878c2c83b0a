"""A notification receiver for tests: a real HTTP server in a thread that Apprise's `json://`
URL posts to. It records every message it accepted, and can be told to fail or hang.

    with NotifyReceiver() as receiver:
        url = receiver.apprise_url          # json://127.0.0.1:PORT/notify
        receiver.fail_next(2, status=503)   # the next two posts answer 503
        receiver.hang = True                # posts block until receiver.release() (or stop())
        receiver.wait_for(1)                # the accepted messages, once there is one
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.waiting import HANG_GUARD


class NotifyReceiver:
    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.messages: list[dict] = []  # accepted posts: Apprise's {"title", "message", "type", ...}
        self.attempts = 0  # every post, answered or not
        self.hang = False
        self.in_flight = 0  # posts being held (hang)
        self._failures: list[int] = []
        self._released = threading.Event()
        self._lock = threading.Condition()
        self._credentials = f"{user}:{password}@" if user else ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.attempts += 1
                    status = receiver._failures.pop(0) if receiver._failures else 200
                    hang = receiver.hang
                    if hang:
                        receiver.in_flight += 1
                    receiver._lock.notify_all()
                if hang:
                    receiver._released.wait(60)
                    with receiver._lock:
                        receiver.in_flight -= 1
                    status = 503
                if status == 200:
                    with receiver._lock:
                        receiver.messages.append(json.loads(body))
                        receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def apprise_url(self) -> str:
        return f"json://{self._credentials}127.0.0.1:{self.port}/notify"

    def fail_next(self, times: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def release(self) -> None:
        self._released.set()

    # Waits end on what they wait for (a message accepted, a post arriving), never after a budget
    # guessed for an idle machine: the first delivery of a process was seen to miss a 10 s budget
    # under load. HANG_GUARD stops only a broken build.
    def wait_for(self, count: int) -> list[dict]:
        """The accepted messages, once there are `count`."""
        self._wait(lambda: len(self.messages) >= count, f"{count} accepted messages")
        return list(self.messages)

    def wait_attempts(self, count: int) -> int:
        """Once `count` posts have arrived, accepted or refused."""
        self._wait(lambda: self.attempts >= count, f"{count} posts")
        return self.attempts

    def wait_in_flight(self) -> bool:
        self._wait(lambda: self.in_flight > 0, "a post held in flight")
        return True

    def _wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + HANG_GUARD
        with self._lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"never happened: {what} (received {self.attempts} posts)")
                self._lock.wait(left)

    def start(self) -> "NotifyReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "NotifyReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
