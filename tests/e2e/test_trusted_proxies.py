"""Issue 25, item 2: TRUSTED_PROXIES works through the real servers. waitress removed
X-Forwarded-For and X-Forwarded-Proto before the application's ProxyFix saw them, so behind
nginx ALLOWED_IPS judged the proxy, the audit recorded 127.0.0.1 and the page's cookie never got
Secure. Both `python run.py` (waitress) and gunicorn now pass the headers to the application,
which believes exactly TRUSTED_PROXIES hops."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import create_engine, select

from openalgo_gtt.store.models import AuditRecord
from tests.e2e.server import REPO

CLIENT = "203.0.113.7"
BEHIND_NGINX = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}


COMMANDS = {"waitress": [sys.executable, str(REPO / "run.py")],
            "gunicorn": [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "openalgo_gtt.wsgi:app"]}


def _serve(server, which: str) -> subprocess.Popen:
    """Start `which` and wait for any answer (the health check is behind ALLOWED_IPS too)."""
    log_path = server.workdir / f"{which}.log"
    process = subprocess.Popen(COMMANDS[which], cwd=server.workdir, env=server.env, stdout=open(log_path, "wb"),
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(f"{server.url}/api/health", timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    pytest.fail(log_path.read_text())


@pytest.mark.parametrize("which", ["waitress", "gunicorn"])
def test_behind_one_proxy_the_client_address_and_https_are_the_forwarded_ones(server_factory, database_url, which):
    server = server_factory(TRUSTED_PROXIES="1", ALLOWED_IPS=CLIENT, RATE_LIMIT_ENABLED="false")
    key = server.cli("apikey", "create", "behind-nginx").stdout.strip().splitlines()[-1]
    server.cli("db", "upgrade")
    process = _serve(server, which)
    try:
        ping = requests.post(f"{server.url}/api/v1/ping", json={"apikey": key}, headers=BEHIND_NGINX, timeout=10)
        assert ping.status_code == 200, ping.text  # ALLOWED_IPS judged the client, not the proxy
        # The proxy's own address, with no forwarded client, is not on the list.
        direct = requests.post(f"{server.url}/api/v1/ping", json={"apikey": key}, timeout=10)
        assert direct.status_code == 403 and direct.json()["message"] == "address not allowed"

        form = requests.get(f"{server.url}/", headers=BEHIND_NGINX, timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        # The form's cookie is Secure (https at the proxy): sent back by hand over this plain http.
        cookie = "; ".join(f"{c.name}={c.value}" for c in form.cookies)
        signed_in = requests.post(f"{server.url}/ui/signin", data={"apikey": key, "csrf_token": token},
                                  headers={**BEHIND_NGINX, "Cookie": cookie}, allow_redirects=False, timeout=10)
        assert signed_in.status_code == 303, signed_in.text
        cookies = signed_in.headers.get("Set-Cookie", "")
        assert "Secure" in cookies, cookies  # https at the proxy

        engine = create_engine(database_url)
        with engine.connect() as conn:
            row = conn.execute(select(AuditRecord.client_addr)
                               .where(AuditRecord.request_id == ping.headers["X-Request-ID"])).one()
        engine.dispose()
        assert row.client_addr == CLIENT
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("which", ["waitress", "gunicorn"])
def test_without_trusted_proxies_neither_server_believes_forwarded_headers(server_factory, database_url, which):
    server = server_factory(TRUSTED_PROXIES="0", RATE_LIMIT_ENABLED="false")
    key = server.cli("apikey", "create", "no-proxy").stdout.strip().splitlines()[-1]
    server.cli("db", "upgrade")
    process = _serve(server, which)
    try:
        ping = requests.post(f"{server.url}/api/v1/ping", json={"apikey": key}, headers=BEHIND_NGINX, timeout=10)
        assert ping.status_code == 200, ping.text
        form = requests.get(f"{server.url}/", headers=BEHIND_NGINX, timeout=10)
        assert form.cookies and "Secure" not in form.headers.get("Set-Cookie", "")  # gunicorn trusted 127.0.0.1
        engine = create_engine(database_url)
        with engine.connect() as conn:
            row = conn.execute(select(AuditRecord.client_addr)
                               .where(AuditRecord.request_id == ping.headers["X-Request-ID"])).one()
        engine.dispose()
        assert row.client_addr == "127.0.0.1"
    finally:
        process.terminate()
        process.wait(timeout=30)
