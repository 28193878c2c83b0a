"""Issue 25, item 1: idle connections by the thousand neither kill `python run.py` nor fill its
log, whatever the descriptor limit, and it answers again as soon as they close.

waitress's select() loop could not watch a descriptor numbered 1024 or more: a connection limit
above ~1000 crashed the process ("filedescriptor out of range in select()"); under `ulimit -n
1024` each accept that failed logged a traceback, thousands a second. Loopback only; each flood
is held FLOOD_SECONDS."""
from __future__ import annotations

import os
import resource
import socket
import time

import pytest
import requests

FLOOD = 2000
FLOOD_SECONDS = 10.0
ANSWER_WITHIN = 2.0


@pytest.fixture(autouse=True)
def _room_for_the_flood():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.skip(f"this process may open {hard} files; the flood needs {FLOOD + 200}")
    wanted = FLOOD + 200 if hard == resource.RLIM_INFINITY else min(hard, max(soft, FLOOD + 200))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _open_descriptors(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _flood(server) -> int:
    """Open FLOOD idle connections (never sending a byte), hold them, close them; the server
    process must stay up throughout. Returns the most descriptors it had open meanwhile."""
    sockets, most = [], 0
    try:
        for _ in range(FLOOD):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))  # completes, or waits in the backlog
            sockets.append(sock)
        deadline = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < deadline:
            assert server.process.poll() is None, f"the server died under the flood:\n{server.output()[-3000:]}"
            most = max(most, _open_descriptors(server.process.pid))
            time.sleep(0.5)
    finally:
        for sock in sockets:
            sock.close()
    return most


def _answers_soon(server) -> float:
    started = time.monotonic()
    while time.monotonic() - started < ANSWER_WITHIN:
        try:
            if requests.get(f"{server.url}/api/health", timeout=ANSWER_WITHIN).status_code in (200, 503):
                return time.monotonic() - started
        except requests.RequestException:
            time.sleep(0.05)
    pytest.fail(f"no answer within {ANSWER_WITHIN} s after the flood:\n{server.output()[-3000:]}")


def _quiet(log: str) -> None:
    assert "Traceback" not in log and "filedescriptor out of range" not in log, log[-3000:]
    assert log.count("connection limit") <= 2, log[-3000:]  # once a minute, not once per connection
    assert len(log) < 20_000, f"{len(log)} bytes of log"


def test_a_raised_connection_limit_survives_2000_idle_connections(server_factory):
    server = server_factory(SERVER_CONNECTION_LIMIT="1500").start()
    most = _flood(server)
    after = _answers_soon(server)
    print(f"\nlimit 1500: {FLOOD} connections held {FLOOD_SECONDS:.0f} s, at most {most} descriptors open in the "
          f"server; answered {after:.2f} s after they closed")
    assert server.process.poll() is None
    _quiet(server.output())


def test_under_a_1024_descriptor_limit_the_connection_limit_is_clamped_and_the_flood_refused_quietly(server_factory):
    server = server_factory(SERVER_CONNECTION_LIMIT="5000")
    server.preexec_fn = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    server.start()
    most = _flood(server)
    after = _answers_soon(server)
    log = server.output()
    print(f"\nulimit 1024, limit 5000: at most {most} descriptors open in the server; answered {after:.2f} s after "
          f"the flood; {[line for line in log.splitlines() if 'does not fit' in line][:1]}")
    assert log.count("Too many open files") <= 1, log[-3000:]
    _quiet(log)
    assert "does not fit the open-file limit (1024, hard 1024)" in log  # said once, at start
