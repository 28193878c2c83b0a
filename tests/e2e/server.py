"""Run the real service (`python run.py`, waitress) as a child process for end-to-end tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
RUN_PY = REPO / "run.py"


def free_port() -> int:
    with socket.socket() as sock:
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
        self.preexec_fn = None  # run in the child before run.py (a test's resource limits)
        self.output_path = workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(RUN_PY), *args],
            cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=120, check=check,
        )

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        log = open(self.output_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, str(RUN_PY)], cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
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
