from __future__ import annotations

import pytest

from tests.e2e.server import ServerProcess


@pytest.fixture
def server_factory(tmp_path, database_url):
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        server = ServerProcess(tmp_path / f"srv{len(started)}", database_url, **env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
