"""Run the real service (`python run.py`, waitress) as a child process for end-to-end tests."""
from __future__ import annotations

import os
import random
import socket
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
RUN_PY = REPO / "run.py"
_PICK = random.SystemRandom()  # not the seeded `random`: parallel workers must not pick in step


def _ports_below_the_ephemeral_range() -> range:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default; elsewhere the retry in ServerProcess.start covers a clash
    return range(max(1024, low - 12000), low)


def free_port() -> int:
    """A port nothing listens on now, picked below the range the kernel hands out to outgoing
    connections, so no client socket (to PostgreSQL, Redis, a fake) can take it before the
    server binds it. Another test starting a server at the same moment still might:
    ServerProcess.start sees that and starts again on another port."""
    ports = _ports_below_the_ephemeral_range()
    for _ in range(100):
        port = _PICK.choice(ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # a crowded range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python run.py` in its own working directory, with its own environment."""

    def __init__(self, workdir: Path, database_url: str, **env: str):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("ACCESS_TOKEN", "BROKER", "DATABASE_URL")},
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATABASE_URL": database_url,
            "API_KEY_PEPPER": "e2e-pepper-" + "y" * 32,
            "LOG_LEVEL": "WARNING",
            **env,  # may override any of the above
        }
        self.process: subprocess.Popen | None = None
        # Only serving and `db upgrade` create the database; the tests' other commands (an API key
        # made before the first start) find it made here, as `db upgrade` would make it.
        # False: commands meet a database as a user's would (tests of the store's absence).
        self.prepare_store = True
        self.preexec_fn = None  # run in the child before run.py (a test's resource limits)
        self.output_path = workdir / "server.log"

    def create_store(self) -> None:
        """The database at the newest migration, in this process (as `db upgrade` does it)."""
        from openalgo_gtt.store.migrate import upgrade

        upgrade(self.env["DATABASE_URL"])
        self.prepare_store = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        if args and args[0] not in ("db", "--help", "serve") and self.prepare_store:
            self.create_store()
        return subprocess.run(
            [sys.executable, str(RUN_PY), *args],
            cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=120, check=check,
        )

    def _in_child(self) -> None:
        # Started as a person starts it, in a terminal: Ctrl-C (SIGINT) means stop. A test run
        # launched in the background by a script inherits SIGINT ignored (POSIX shells do that to
        # background jobs), and an exec'd server would keep ignoring it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if self.preexec_fn is not None:
            self.preexec_fn()

    def start(self, timeout: float = 30.0, *, attempts: int = 3) -> "ServerProcess":
        log = open(self.output_path, "ab")
        logged = len(self.output())
        self.process = subprocess.Popen(
            [sys.executable, str(RUN_PY)], cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=self._in_child,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if attempts > 1 and "Address already in use" in self.output()[logged:]:
                    # Another test's server took the port between free_port and this bind.
                    self.process = None
                    self.port = free_port()
                    self.env["PORT"] = str(self.port)
                    return self.start(timeout, attempts=attempts - 1)
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/api/health", timeout=1).status_code in (200, 503):
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
