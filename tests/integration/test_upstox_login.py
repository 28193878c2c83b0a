"""The daily Upstox login: /upstox/login and /upstox/callback, the notifier webhook, the token's
precedence and its 03:30 IST expiry, and `python run.py login` (run_login), against the fake Upstox.

The clock is injected, so 03:30 IST is reached without waiting: the `env` fixture builds the
gateway with a clocked token provider; `test_the_gateway_wiring` checks the gateway's own wiring.
"""
from __future__ import annotations

import dataclasses

import hashlib
import json
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from openalgo_gtt.app import create_app
from openalgo_gtt.brokers.errors import TokenRejected
from openalgo_gtt.brokers.upstox import UpstoxBroker
from openalgo_gtt.domain.clock import IST
from openalgo_gtt.gateway import Gateway
from openalgo_gtt.services.audit import observe_broker_call
from openalgo_gtt.cli.login import run_login
from openalgo_gtt.services.tokens import EXPIRED_MESSAGE, TokenExpired, TokenProvider
from openalgo_gtt.services.upstox_login import LoginConfig, LoginError, UpstoxLogin
from openalgo_gtt.store.logins import TokenStore
from openalgo_gtt.store.models import Base

IDEA_SINGLE = {
    "strategy": "login-test", "trigger_type": "SINGLE", "exchange": "NSE", "symbol": "IDEA", "action": "BUY",
    "product": "CNC", "quantity": 1, "pricetype": "LIMIT", "price": 9.55, "triggerprice_tg": 9.55,
}
USER = {"user_id": "AB1234", "user_name": "A Trader", "email": "a@example.com"}


def ist(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=IST)


class FakeClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _create_login_tables(engine) -> None:
    """The lead's migration creates these; until then (and harmlessly after) create them here."""
    from openalgo_gtt.store.login_models import LoginState, UpstoxToken

    Base.metadata.create_all(engine, tables=[UpstoxToken.__table__, LoginState.__table__], checkfirst=True)


def _attach(built: Gateway, fake, clock, redirect_uri: str) -> SimpleNamespace:
    """A gateway like `built` (which is closed), with the login pieces on the injected clock."""
    tokens = TokenProvider.from_settings(built.settings, built.sessions, now=clock)
    config = LoginConfig(api_url=fake.url, api_key=fake.client_id, api_secret=fake.client_secret,
                         redirect_uri=redirect_uri, timeout=5.0)
    login = UpstoxLogin(config, tokens, pepper=built.settings.api_key_pepper)
    broker = UpstoxBroker(fake.url, tokens.current, timeout=5.0, pacer=None,
                          observer=tokens.observing(observe_broker_call))
    built.close()
    gateway = Gateway.build(built.settings, tokens=tokens, broker=broker, upstox_login=login)
    app = create_app(gateway=gateway)
    app.config["TESTING"] = True
    if "upstox_login" not in app.blueprints:
        from openalgo_gtt.api.upstox_login import bp

        app.register_blueprint(bp)
    return SimpleNamespace(gateway=gateway, tokens=tokens, login=login, client=app.test_client())


def _build_gateway(settings, fake, **overrides) -> Gateway:
    from openalgo_gtt.store.instruments import ensure_instruments
    from openalgo_gtt.store.migrate import upgrade

    changes = {"broker": "upstox", "upstox_api_url": fake.url, "upstox_timeout": 1.0, "access_token": None,
               "access_token_source": None, **overrides}
    built_settings = dataclasses.replace(settings, **changes)
    upgrade(built_settings.database_url)
    gateway = Gateway.build(built_settings)
    _create_login_tables(gateway.engine)
    ensure_instruments(gateway.engine)
    return gateway


@pytest.fixture
def clock():
    return FakeClock(ist(2026, 3, 2, 10, 0))


@pytest.fixture
def env(settings, fake_upstox, clock):
    fake_upstox.login_codes = {"good-code": dict(USER)}
    gateway = _build_gateway(settings, fake_upstox)
    attached = _attach(gateway, fake_upstox, clock, "http://127.0.0.1:5000/upstox/callback")
    attached.fake, attached.clock = fake_upstox, clock
    attached.key = attached.gateway.api_keys.create("tester")
    yield attached
    attached.gateway.close()


def _start(env) -> str:
    """Start a login with the key; returns the state Upstox will send back."""
    response = env.client.get("/upstox/login", headers={"X-API-KEY": env.key})
    assert response.status_code == 302, response.get_data(as_text=True)
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def _callback(env, code: str, state: str):
    return env.client.get("/upstox/callback", query_string={"code": code, "state": state})


def _stored_rows(env) -> int:
    from openalgo_gtt.store.login_models import UpstoxToken

    with env.gateway.sessions() as session:
        return session.scalar(select(func.count()).select_from(UpstoxToken))


def _place(env):
    return env.client.post("/api/v1/placegtt", data=json.dumps({"apikey": env.key, **IDEA_SINGLE}),
                           content_type="application/json")


# ----- starting a login ------------------------------------------------------------------------


def test_starting_a_login_needs_an_api_key(env):
    for response in (env.client.get("/upstox/login"), env.client.get("/upstox/login?apikey=" + "0" * 64),
                     env.client.get("/upstox/login", headers={"X-API-KEY": "nope"})):
        assert response.status_code == 403
        assert response.get_json()["status"] == "error"
        assert response.get_json()["message"] == "Invalid openalgo apikey"
    with env.gateway.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM login_states")) == 0


@pytest.mark.parametrize("how", ["header", "query"])
def test_login_redirects_to_the_upstox_dialog_with_a_one_time_state(env, how):
    if how == "header":
        response = env.client.get("/upstox/login", headers={"X-API-KEY": env.key})
    else:
        response = env.client.get(f"/upstox/login?apikey={env.key}")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        env.fake.url + "/v2/login/authorization/dialog")
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == env.fake.client_id
    assert query["redirect_uri"] == "http://127.0.0.1:5000/upstox/callback"
    state = query["state"]
    assert len(state) >= 40
    with env.gateway.sessions() as session:
        (stored,) = session.execute(text("SELECT state_hash, created_at, expires_at FROM login_states")).all()
    assert stored[0] == hashlib.sha256(state.encode()).hexdigest()  # only the hash is kept
    with env.gateway.engine.connect() as conn:  # the audit row names the key holder, never the key
        rows = conn.execute(text("SELECT endpoint, api_key_name, request_body FROM audit_log")).all()
    assert [row[:2] for row in rows] == [("/upstox/login", "tester")] and env.key not in repr(rows)


# ----- the callback ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issued", "expires_text"),
    [(ist(2026, 3, 2, 2, 0), "2026-03-02 03:30:00"),  # before 03:30 IST: that same morning
     (ist(2026, 3, 2, 10, 0), "2026-03-03 03:30:00")],  # after: the next morning
)
def test_a_good_login_stores_the_token_encrypted_until_the_next_0330_ist(env, database_url, issued,
                                                                        expires_text):
    env.clock.moment = issued
    state = _start(env)
    response = _callback(env, "good-code", state)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "success" and body["user_id"] == "AB1234"
    assert body["token_source"] == "login" and body["token_expires_at"] == expires_text
    (token,) = env.fake.issued_tokens
    assert token not in response.get_data(as_text=True)
    assert env.tokens.current() == token
    assert env.tokens.describe() == {"token": "valid", "token_source": "login", "token_expires_at": expires_text}

    with env.gateway.sessions() as session:
        encrypted, user_id, source = session.execute(
            text("SELECT encrypted_token, user_id, source FROM upstox_tokens")).one()
    assert (user_id, source) == ("AB1234", "login") and token not in encrypted
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":  # every byte SQLite wrote: the database, its WAL and shm
        files = list(Path(url.database).parent.glob(Path(url.database).name + "*"))
        written = b"".join(path.read_bytes() for path in files)
        assert encrypted.encode() in written  # the scan does see the stored row...
        assert token.encode() not in written  # ...and the token is not there in clear
    else:
        with env.gateway.engine.connect() as conn:
            for table in ("upstox_tokens", "login_states", "audit_log"):
                rows = conn.execute(text(f"SELECT * FROM {table}")).all()
                assert token not in repr(rows)

    # The stored login drives the broker: the fake accepts the token it issued.
    placed = _place(env)
    assert placed.status_code == 200, placed.get_json()


def test_a_browser_gets_a_small_html_page(env):
    state = _start(env)
    response = env.client.get("/upstox/callback", query_string={"code": "good-code", "state": state},
                              headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "2026-03-03 03:30:00" in response.get_data(as_text=True)


def test_the_state_is_single_use(env):
    env.fake.login_codes["second-code"] = dict(USER)
    state = _start(env)
    assert _callback(env, "good-code", state).status_code == 200
    again = _callback(env, "second-code", state)
    assert again.status_code == 400
    assert "already used" in again.get_json()["message"]
    assert len(env.fake.calls_to("login.token")) == 1 and len(env.fake.issued_tokens) == 1


def test_the_state_expires_after_ten_minutes(env):
    state = _start(env)
    env.clock.moment += timedelta(minutes=10, seconds=1)
    response = _callback(env, "good-code", state)
    assert response.status_code == 400
    assert "state expired" in response.get_json()["message"]
    assert env.fake.calls_to("login.token") == [] and _stored_rows(env) == 0


def test_an_unknown_or_missing_state_is_400(env):
    _start(env)
    for query in ({"code": "good-code", "state": "forged"}, {"code": "good-code"}):
        response = env.client.get("/upstox/callback", query_string=query)
        assert response.status_code == 400 and response.get_json()["status"] == "error"
    assert env.fake.calls_to("login.token") == [] and _stored_rows(env) == 0


def test_a_bad_code_is_400_with_upstoxs_code_and_nothing_stored(env):
    state = _start(env)
    response = _callback(env, "bad-code", state)
    assert response.status_code == 400
    body = response.get_json()
    assert body["broker_code"] == "UDAPI100057" and "Invalid Auth code" in body["message"]
    assert _stored_rows(env) == 0
    assert env.tokens.describe() == {"token": "missing", "token_source": None, "token_expires_at": None}
    with pytest.raises(TokenRejected):
        env.tokens.current()


def test_wrong_app_credentials_are_reported(env):
    env.login.config = LoginConfig(api_url=env.fake.url, api_key=env.fake.client_id, api_secret="wrong",
                                   redirect_uri="http://127.0.0.1:5000/upstox/callback", timeout=5.0)
    response = _callback(env, "good-code", _start(env))
    assert response.status_code == 400 and response.get_json()["broker_code"] == "UDAPI100016"


def test_upstox_down_during_the_exchange_is_502(env):
    env.fake.inject("login.token", "500")
    response = _callback(env, "good-code", _start(env))
    assert response.status_code == 502 and _stored_rows(env) == 0


def test_login_that_is_not_configured_says_what_to_set(env):
    env.login.config = LoginConfig(api_url=env.fake.url)
    response = env.client.get("/upstox/login", headers={"X-API-KEY": env.key})
    assert response.status_code == 503
    assert "UPSTOX_API_KEY, UPSTOX_API_SECRET, UPSTOX_REDIRECT_URI" in response.get_json()["message"]


# ----- expiry ----------------------------------------------------------------------------------


def test_at_0330_ist_the_login_expires_and_calls_fail_fast_without_reaching_upstox(env):
    assert _callback(env, "good-code", _start(env)).status_code == 200  # 10:00 IST: until 03:30 tomorrow
    env.clock.moment = ist(2026, 3, 3, 3, 29, 59)
    assert env.tokens.describe()["token"] == "valid"
    env.clock.moment = ist(2026, 3, 3, 3, 30)
    assert env.tokens.describe() == {"token": "expired", "token_source": "login",
                                     "token_expires_at": "2026-03-03 03:30:00"}
    with pytest.raises(TokenExpired):
        env.tokens.current()

    env.fake.clear_calls()
    response = _place(env)
    assert response.status_code == 502
    assert env.fake.calls == []  # failed fast: Upstox never saw the call
    with env.gateway.sessions() as session:  # the reservation was given back
        assert (session.scalar(text("SELECT coalesce(sum(count), 0) FROM trade_counters")) or 0) == 0
    assert response.get_json()["message"] == EXPIRED_MESSAGE

    # Logging in again brings it back.
    env.fake.login_codes["next-code"] = dict(USER)
    assert _callback(env, "next-code", _start(env)).status_code == 200
    assert env.tokens.describe()["token_expires_at"] == "2026-03-04 03:30:00"
    assert _place(env).status_code == 200


def test_a_configured_token_has_no_known_expiry_until_upstox_rejects_it(settings, fake_upstox, clock):
    env = _attach(_build_gateway(settings, fake_upstox, access_token="stale-token",
                                 access_token_source="environment"),
                  fake_upstox, clock, "http://127.0.0.1:5000/upstox/callback")
    gateway = env.gateway
    try:
        assert env.tokens.describe() == {"token": "valid", "token_source": "environment", "token_expires_at": None}
        with pytest.raises(TokenRejected):
            gateway.broker.list_gtts()  # the fake answers 401 UDAPI100050
        assert env.tokens.describe()["token"] == "expired"
        fake_upstox.token = "stale-token"  # Upstox accepts it again: the next good answer clears it
        gateway.broker.list_gtts()
        assert env.tokens.describe()["token"] == "valid"
    finally:
        gateway.close()


# ----- precedence ------------------------------------------------------------------------------


def test_precedence_is_keys_json_then_environment_then_the_stored_login(tmp_path, database_url, db_engine,
                                                                        clock):
    from openalgo_gtt.config import load_settings
    from openalgo_gtt.store.db import make_session_factory
    from tests.conftest import TEST_PEPPER

    _create_login_tables(db_engine)
    sessions = make_session_factory(db_engine)
    TokenStore(sessions, TEST_PEPPER).save("login-token", user_id="AB1234", source="login",
                                           issued_at=clock(), expires_at=ist(2026, 3, 3, 3, 30))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    base_env = {"API_KEY_PEPPER": TEST_PEPPER, "DATABASE_URL": database_url}

    def provider(environ):
        return TokenProvider.from_settings(load_settings(environ, cwd, read_dotenv=False), sessions, now=clock)

    (cwd / "keys.json").write_text(json.dumps({"access_token": "file-token"}))
    both = provider({**base_env, "ACCESS_TOKEN": "env-token"})
    assert both.current() == "file-token"
    assert both.describe() == {"token": "valid", "token_source": "keys.json", "token_expires_at": None}
    # A login made meanwhile is stored, with a warning that keys.json still wins.
    login = UpstoxLogin(LoginConfig(api_key="fake-client-id"), both, pepper=TEST_PEPPER)
    result = login.accept_notification({"access_token": "pushed-token", "user_id": "AB1234"})
    assert result.warnings and "keys.json" in result.warnings[0]
    assert both.current() == "file-token"

    (cwd / "keys.json").unlink()
    env_only = provider({**base_env, "ACCESS_TOKEN": "env-token"})
    assert env_only.current() == "env-token" and env_only.describe()["token_source"] == "environment"

    stored = provider(base_env)
    assert stored.current() == "pushed-token"
    assert stored.describe() == {"token": "valid", "token_source": "login", "token_expires_at": "2026-03-03 03:30:00"}


# ----- the notifier webhook and the access-token request ----------------------------------------


def test_the_notifier_with_a_wrong_secret_is_a_plain_404(env):
    payload = env.fake.approve_token_request()
    for path in ("/upstox/notifier/" + "0" * 32, "/upstox/notifier/", env.login.notifier_path + "x"):
        response = env.client.post(path, json=payload)
        assert response.status_code == 404, path
    assert _stored_rows(env) == 0


def test_the_notifier_with_the_right_secret_stores_the_token(env):
    path = env.login.notifier_path
    assert path.startswith("/upstox/notifier/") and len(path.rsplit("/", 1)[1]) == 32
    payload = env.fake.approve_token_request(user_id="AB1234")
    response = env.client.post(path, json=payload)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "success" and body["user_id"] == "AB1234"
    assert payload["access_token"] not in response.get_data(as_text=True)
    assert env.tokens.current() == payload["access_token"]
    assert env.tokens.describe()["token_source"] == "login"
    assert env.tokens.describe()["token_expires_at"].endswith("03:30:00")
    assert _place(env).status_code == 200  # the fake accepts the pushed token
    # The audit row keeps the body with the token redacted, and the path with the secret masked.
    with env.gateway.engine.connect() as conn:
        rows = conn.execute(text("SELECT endpoint, request_body FROM audit_log")).all()
    assert payload["access_token"] not in repr(rows) and path not in repr(rows)
    assert "/upstox/notifier/***" in [row[0] for row in rows]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [({"client_id": "someone-else"}, "client_id"), ({"message_type": "order"}, "message_type"),
     ({"access_token": ""}, "no access_token"), ({"token_type": "MAC"}, "token_type")],
)
def test_the_notifier_refuses_a_payload_that_is_not_ours(env, change, fragment):
    response = env.client.post(env.login.notifier_path, json=env.fake.approve_token_request(**change))
    assert response.status_code == 400 and fragment in response.get_json()["message"]
    assert _stored_rows(env) == 0


def test_the_access_token_request_needs_a_key_and_reports_where_the_token_goes(env):
    assert env.client.post("/upstox/token-request").status_code == 403
    assert env.fake.calls_to("login.token_request") == []
    response = env.client.post("/upstox/token-request", headers={"X-API-KEY": env.key})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["notifier_path"] == env.login.notifier_path
    assert body["authorization_expiry"].endswith("03:30:00")
    assert body["warnings"]  # the fake's notifier URL is not this service's
    assert len(env.fake.token_requests) == 1

    env.fake.notifier_url = "https://gtt.example.com" + env.login.notifier_path
    assert "warnings" not in env.client.post("/upstox/token-request", json={"apikey": env.key}).get_json()


# ----- python run.py login ---------------------------------------------------------------------


def test_terminal_login_through_the_one_shot_listener(env):
    redirect = f"http://127.0.0.1:{_free_port()}/upstox/callback"
    env.login.config = LoginConfig(api_url=env.fake.url, api_key=env.fake.client_id,
                                   api_secret=env.fake.client_secret, redirect_uri=redirect, timeout=5.0)
    env.fake.dialog_code = "good-code"  # the fake dialog logs the user in and redirects at once
    released = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith(env.fake.url):  # the "browser" opens the address
            threading.Thread(target=requests.get, args=(line,), kwargs={"timeout": 5}, daemon=True).start()

    def prompt(_question: str) -> str:
        released.wait(10)  # the user never pastes anything
        raise EOFError

    try:
        result = run_login(env.gateway, echo=echo, prompt=prompt, timeout=10, service=env.login)
    finally:
        released.set()
    assert result.user_id == "AB1234"
    assert env.tokens.current() == env.fake.issued_tokens[0]
    assert any("valid until 2026-03-03 03:30:00 IST" in line for line in lines)


def test_terminal_login_completed_by_the_running_server(env):
    with socket.socket() as busy:  # the server already listens on the redirect URI's port
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        redirect = f"http://127.0.0.1:{busy.getsockname()[1]}/upstox/callback"
        env.login.config = LoginConfig(api_url=env.fake.url, api_key=env.fake.client_id,
                                       api_secret=env.fake.client_secret, redirect_uri=redirect, timeout=5.0)
        released = threading.Event()
        lines: list[str] = []

        def echo(line: str) -> None:
            lines.append(line)
            if line.startswith(env.fake.url):  # Upstox redirects the browser to the server
                state = parse_qs(urlsplit(line).query)["state"][0]
                threading.Thread(target=_callback, args=(env, "good-code", state), daemon=True).start()

        def prompt(_question: str) -> str:
            released.wait(10)
            raise EOFError

        try:
            result = run_login(env.gateway, echo=echo, prompt=prompt, timeout=10, poll_interval=0.05,
                               service=env.login)
        finally:
            released.set()
    assert result.user_id == "AB1234" and env.tokens.current() == env.fake.issued_tokens[0]
    assert any("in use" in line for line in lines)


def test_terminal_login_with_a_pasted_redirect_address(env):
    lines: list[str] = []

    def prompt(_question: str) -> str:
        state = parse_qs(urlsplit(lines[1]).query)["state"][0]
        return f"http://127.0.0.1:5000/upstox/callback?code=good-code&state={state}"

    result = run_login(env.gateway, echo=lines.append, prompt=prompt, listen=False, timeout=10, service=env.login)
    assert result.user_id == "AB1234" and env.tokens.current() == env.fake.issued_tokens[0]


def test_terminal_login_with_a_bad_pasted_code_fails_cleanly(env):
    lines: list[str] = []

    def prompt(_question: str) -> str:
        state = parse_qs(urlsplit(lines[1]).query)["state"][0]
        return f"?code=bad-code&state={state}"

    with pytest.raises(LoginError) as caught:
        run_login(env.gateway, echo=lines.append, prompt=prompt, listen=False, timeout=10, service=env.login)
    assert caught.value.code == "UDAPI100057" and _stored_rows(env) == 0


def test_terminal_login_by_approving_in_the_upstox_app(env):
    def approve() -> None:  # the user taps approve; Upstox calls the running server's notifier
        for _ in range(100):
            if env.fake.token_requests:
                env.client.post(env.login.notifier_path, json=env.fake.approve_token_request())
                return
            threading.Event().wait(0.05)

    threading.Thread(target=approve, daemon=True).start()
    lines: list[str] = []
    result = run_login(env.gateway, echo=lines.append, prompt=lambda q: "", via_app=True, timeout=10,
                       poll_interval=0.05, service=env.login)
    assert result.source == "notifier" and env.tokens.current() == env.fake.issued_tokens[0]
    assert any(env.login.notifier_path in line for line in lines)


# ----- the lead's wiring -----------------------------------------------------------------------


def test_the_gateway_wiring(settings, fake_upstox):
    gateway = _build_gateway(settings, fake_upstox, upstox_api_key=fake_upstox.client_id,
                             upstox_api_secret=fake_upstox.client_secret,
                             upstox_redirect_uri="http://127.0.0.1:5000/upstox/callback")
    try:
        client = create_app(gateway=gateway).test_client()
        key = gateway.api_keys.create("tester")
        health = client.get("/api/health").get_json()
        assert health["token"] == "missing" and health["token_source"] is None
        response = client.post("/api/v1/placegtt", data=json.dumps({"apikey": key, **IDEA_SINGLE}))
        assert response.status_code == 502 and "log in" in response.get_json()["message"]
        assert fake_upstox.calls == []
        payload = fake_upstox.approve_token_request()
        assert client.post(gateway.upstox_login.notifier_path, json=payload).status_code == 200
        assert client.get("/api/health").get_json()["token"] == "valid"
        assert client.post("/api/v1/placegtt", data=json.dumps({"apikey": key, **IDEA_SINGLE})).status_code == 200
        with gateway.engine.connect() as conn:
            endpoints = [row[0] for row in conn.execute(text("SELECT endpoint FROM audit_log"))]
        assert "/upstox/notifier/***" in endpoints  # lifecycle masks the secret
        assert not any(gateway.upstox_login.notifier_path in e for e in endpoints)
    finally:
        gateway.close()


def test_the_callbacks_code_and_state_never_reach_the_audit(env):
    state = _start(env)
    assert _callback(env, "good-code", state).status_code == 200
    with env.gateway.engine.connect() as conn:
        rows = conn.execute(text("SELECT endpoint, request_body FROM audit_log")).all()
    assert "good-code" not in repr(rows) and state not in repr(rows)
    (body,) = [json.loads(b) if isinstance(b, str) else b for endpoint, b in rows if endpoint == "/upstox/callback"]
    assert body == {"code": "***", "state": "***"}
