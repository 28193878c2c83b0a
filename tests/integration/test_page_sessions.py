"""The trader's page over HTTP (Flask's test client, the sandbox broker): its session, its CSRF
token, its security headers, and one audit row per action, exactly as the API leaves them."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from openalgo_gtt.api.security import API_CSP, PAGE_CSP
from openalgo_gtt.config import ConfigError, load_settings
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.model import EventKind
from openalgo_gtt.domain.notifications import Event
from openalgo_gtt.services.page_sessions import PageSessions
from openalgo_gtt.store.instruments import ensure_instruments
from openalgo_gtt.store.models import AuditRecord
from openalgo_gtt.store.page_sessions import PageSessionRows
from tests.integration.secured_app import secured_app


@pytest.fixture
def app(settings, gateway):
    ensure_instruments(gateway.engine)
    with secured_app(settings, failed_key_limit="3 per minute", trusted_proxies=1) as application:
        ensure_instruments(application.extensions["openalgo_gtt"].engine)
        yield application


@pytest.fixture
def client(app):
    return app.test_client()


def audit_rows(app) -> list[tuple[str, int, str | None]]:
    engine = app.extensions["openalgo_gtt"].engine
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(AuditRecord.endpoint, AuditRecord.http_status,
                                                      AuditRecord.api_key_name).order_by(AuditRecord.id))]


def signin_token(client) -> str:
    page = client.get("/")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client, key, **kwargs):
    return client.post("/ui/signin", data={"apikey": key, "csrf_token": signin_token(client)}, **kwargs)


def page_csrf(client) -> str:
    return re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/").text).group(1)


def test_the_page_has_its_own_policy_and_the_api_keeps_none(client, api_key):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert "'unsafe-inline'" not in PAGE_CSP and "'unsafe-eval'" not in PAGE_CSP
    assert "frame-ancestors 'none'" in PAGE_CSP and page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    assert client.get("/ui/static/htmx-2.0.11.min.js").headers["Content-Security-Policy"] == PAGE_CSP
    assert client.get("/api/health").headers["Content-Security-Policy"] == API_CSP


def test_signing_in_sets_a_strict_http_only_cookie_secure_over_https(client, app, api_key):
    answer = sign_in(client, api_key)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("gtt_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain http
    page = client.get("/")
    assert "GTT orders" in page.text and api_key not in page.text
    behind_https = sign_in(app.test_client(), api_key, headers={"X-Forwarded-Proto": "https"})  # TRUSTED_PROXIES=1
    cookie = next(c for c in behind_https.headers.getlist("Set-Cookie") if c.startswith("gtt_session="))
    assert "Secure" in cookie


def test_a_wrong_key_is_refused_and_throttled_like_the_apis(client, app, api_key):
    for _ in range(3):
        refused = sign_in(client, "f" * 16 + "." + "0" * 64)
        assert refused.status_code == 403 and "Invalid API key" in refused.text
    throttled = sign_in(client, "wrong")
    assert throttled.status_code == 429 and "Too many wrong API keys" in throttled.text
    assert sign_in(client, api_key).status_code == 303  # the right key still gets in
    assert audit_rows(app) == [("/ui/signin", 403, None)] * 3 + [("/ui/signin", 429, None),
                                                                 ("/ui/signin", 303, "tester")]
    assert client.get("/").status_code == 200  # signed in: the address's wrong keys do not count against it


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_a_wrong_key_counts_even_when_the_form_token_is_missing_or_wrong(client, app, api_key, token):
    """Issue 25, item 8: the key was checked (argon2, before the view) but the failure never
    counted when the form's CSRF token was missing or wrong. Every key check counts."""
    data = {"apikey": "f" * 16 + "." + "0" * 64}
    if token is not None:
        data["csrf_token"] = token
    for _ in range(3):
        assert client.post("/ui/signin", data=data).status_code == 403
    throttled = client.post("/ui/signin", data={**data, "apikey": "e" * 16 + "." + "1" * 64})
    assert throttled.status_code == 429 and "Too many wrong API keys" in throttled.text
    assert sign_in(client, api_key).status_code == 303  # the right key is never throttled


def test_sign_out_ends_the_session_on_the_server(client, app, api_key):
    sign_in(client, api_key)
    cookie = client.get_cookie("gtt_session").value
    assert client.post("/ui/signout", data={"csrf_token": page_csrf(client)}).status_code == 303
    client.set_cookie("gtt_session", cookie)  # the old cookie, kept by an attacker
    assert client.get("/ui/gtts").status_code == 401
    assert "Sign in" in client.get("/").text


def test_a_session_ends_at_its_expiry_and_when_its_key_is_revoked(gateway, api_key):
    now = [utcnow()]
    sessions = PageSessions(PageSessionRows(gateway.sessions), gateway.api_keys, "pepper" * 8, hours=12,
                            clock=lambda: now[0])
    caller = gateway.api_keys.verify(api_key)
    started = sessions.start(caller)
    assert sessions.resolve(started.token).caller == caller
    now[0] += timedelta(hours=12)
    assert sessions.resolve(started.token) is None
    now[0] = utcnow()
    again = sessions.start(caller)
    gateway.api_keys.revoke("tester")
    assert sessions.resolve(again.token) is None


def test_every_action_needs_the_csrf_token_and_leaves_one_audit_row(client, app, api_key):
    sign_in(client, api_key)
    csrf = page_csrf(client)
    headers = {"HX-Request": "true"}
    assert client.post("/ui/sandbox/ticks", data={"symbol": "IDEA", "exchange": "NSE", "price": "9.5"},
                       headers=headers).status_code == 403  # no token
    tick = client.post("/ui/sandbox/ticks", data={"symbol": "IDEA", "exchange": "NSE", "price": "9.5"},
                       headers={**headers, "X-CSRF-Token": csrf})
    assert tick.status_code == 200 and "Pushed IDEA at 9.5" in tick.text
    order = {"symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": "1", "product": "CNC",
             "trigger_type": "SINGLE", "trigger_price": "9.60", "csrf_token": csrf}
    placed = client.post("/ui/placegtt", data=order, headers=headers)
    assert placed.status_code == 200 and placed.headers["HX-Trigger"] == "book-changed"
    trigger_id = re.search(r"Placed (GTT-\S+?) ", placed.text).group(1)
    for _ in range(3):  # polls, fragments and the page are not audited
        client.get("/ui/gtts?status=all"), client.get("/ui/header"), client.get("/")
    form = client.get(f"/ui/gtt/modify?trigger_id={trigger_id}").text  # the row's inline form, as drawn
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert fields["direction"] == "triggerprice_tg" and fields["trigger_type"] == "SINGLE"
    sideways = client.post("/ui/modifygtt", data={**fields, "action": "SELL", "quantity": "2", "trigger_price": "9.65"},
                           headers=headers)
    assert sideways.status_code == 400 and "cancel and place again" in sideways.text  # the API's own refusal
    again = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', sideways.text))
    assert again["idempotency_key"] != fields["idempotency_key"]  # the refusal used the old one up
    modified = client.post("/ui/modifygtt", data={**again, "action": "BUY", "quantity": "2", "trigger_price": "9.65"},
                           headers=headers)
    assert modified.status_code == 200 and f"Modified {trigger_id}" in modified.text
    cancelled = client.post("/ui/cancelgtt", data={"trigger_id": trigger_id}, headers={**headers, "X-CSRF-Token": csrf})
    assert cancelled.status_code == 200
    status = app.extensions["openalgo_gtt"].gtts.status(trigger_id)
    assert status["status"] == "cancelled" and status["legs"][0]["quantity"] == 2
    exported = client.get("/ui/gtts.csv?status=all")  # "Export CSV": not an action, not audited
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    header, line = exported.text.splitlines()[:2]
    assert header.startswith("trigger_id,type,status,symbol,exchange,action,quantity,trigger_prices,last_price")
    assert line.startswith(f"{trigger_id},single,cancelled,IDEA,NSE,BUY,2,9.65,9.5,")
    assert audit_rows(app)[1:] == [("/ui/sandbox/ticks", 403, "tester"), ("/ui/sandbox/ticks", 200, "tester"),
                                   ("/ui/placegtt", 200, "tester"), ("/ui/modifygtt", 400, "tester"),
                                   ("/ui/modifygtt", 200, "tester"),
                                   ("/ui/cancelgtt", 200, "tester")]
    engine = app.extensions["openalgo_gtt"].engine
    with engine.connect() as conn:
        bodies = " ".join(str(b) for b in conn.execute(select(AuditRecord.request_body)).scalars())
        assert conn.execute(select(func.count()).select_from(AuditRecord)).scalar() == 7
    assert api_key not in bodies and csrf not in bodies and "'apikey': '***'" in bodies


def test_a_refused_place_is_the_apis_answer_beside_its_field(client, app, api_key):
    sign_in(client, api_key)
    csrf = page_csrf(client)
    order = {"symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": "1.5", "product": "CNC",
             "trigger_type": "OCO", "triggerprice_sl": "9", "triggerprice_tg": "10", "csrf_token": csrf}
    refused = client.post("/ui/placegtt", data=order, headers={"HX-Request": "true"})
    assert refused.status_code == 400
    assert re.search(r'id="new-err-quantity"[^>]*hx-swap-oob="true">[^<]*whole number', refused.text)
    unknown = client.post("/ui/placegtt", data={**order, "quantity": "1", "symbol": "IDEAA"},
                          headers={"HX-Request": "true"})
    assert unknown.status_code == 404 and re.search(r'id="new-err-symbol"[^>]*>Unknown symbol', unknown.text)
    # SINGLE: the fields are checked before its direction is read off the last price (none yet:
    # no tick was pushed), and an unknown symbol is refused beside Symbol.
    single = {**order, "trigger_type": "SINGLE", "trigger_price": "9.6"}
    whole = client.post("/ui/placegtt", data=single, headers={"HX-Request": "true"})
    assert whole.status_code == 400 and re.search(r'id="new-err-quantity"[^>]*>[^<]*whole number', whole.text)
    no_price = client.post("/ui/placegtt", data={**single, "quantity": "1"}, headers={"HX-Request": "true"})
    assert no_price.status_code == 409 and re.search(r'id="new-err-trigger_price"[^>]*>no last price', no_price.text)
    nowhere = client.post("/ui/placegtt", data={**single, "quantity": "1", "symbol": "IDEAA"},
                          headers={"HX-Request": "true"})
    assert nowhere.status_code == 404 and re.search(r'id="new-err-symbol"[^>]*>Unknown symbol', nowhere.text)
    assert [row[1] for row in audit_rows(app)[1:]] == [400, 404, 400, 409, 404]


def test_a_nul_in_a_form_is_refused_before_anything_reads_it(client, app, api_key):
    refused = client.post("/ui/signin", data={"apikey": "a\x00b", "csrf_token": signin_token(client)})
    assert refused.status_code == 400 and "NUL" in refused.text
    sign_in(client, api_key)
    tick = client.post("/ui/sandbox/ticks", data={"symbol": "ID\x00EA", "price": "9", "csrf_token": page_csrf(client)})
    assert tick.status_code == 400
    assert [row[:2] for row in audit_rows(app)] == [("/ui/signin", 400), ("/ui/signin", 303), ("/ui/sandbox/ticks", 400)]


def test_a_page_request_without_a_session_is_sent_to_sign_in(client):
    assert client.get("/ui/gtts").status_code == 401
    htmx = client.get("/ui/gtts", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/"


def test_dashboard_session_hours_is_read_and_checked(tmp_path):
    env = {"API_KEY_PEPPER": "x" * 40}
    assert load_settings(env, tmp_path, read_dotenv=False).dashboard_session_hours == 12
    assert load_settings({**env, "DASHBOARD_SESSION_HOURS": "1.5"}, tmp_path,
                         read_dotenv=False).dashboard_session_hours == 1.5
    with pytest.raises(ConfigError, match="DASHBOARD_SESSION_HOURS"):
        load_settings({**env, "DASHBOARD_SESSION_HOURS": "0"}, tmp_path, read_dotenv=False)


def test_on_upstox_the_header_shows_the_token_and_a_place_reaches_upstox(upstox_client, upstox_key, fake_upstox):
    sign_in(upstox_client, upstox_key)
    page = upstox_client.get("/").text
    assert "Broker: <strong>Upstox</strong>" in page and "Upstox token: <strong>valid</strong>" in page
    assert "Log in to Upstox" not in page and "Push a price" not in page  # the sandbox's form only there
    csrf = page_csrf(upstox_client)
    assert upstox_client.get("/ui/quote?symbol=IDEA&exchange=NSE").text == "9.50"  # Upstox's, in IDEA's tick decimals
    placed = upstox_client.post("/ui/placegtt", headers={"HX-Request": "true"}, data={
        "symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": "1", "product": "CNC",
        "trigger_type": "SINGLE", "trigger_price": "9.60", "csrf_token": csrf})
    assert placed.status_code == 200, placed.text
    (gtt,) = fake_upstox.gtts()
    assert gtt["rules"][0]["trigger_type"] == "ABOVE" and float(gtt["rules"][0]["trigger_price"]) == 9.6


def test_on_upstox_a_rows_life_shows_the_watchers_pass_that_saw_it_fire(upstox_client, upstox_key, upstox_gateway,
                                                                         fake_upstox):
    sign_in(upstox_client, upstox_key)
    placed = upstox_client.post("/ui/placegtt", headers={"HX-Request": "true"}, data={
        "symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": "1", "product": "CNC",
        "trigger_type": "SINGLE", "trigger_price": "9.60", "csrf_token": page_csrf(upstox_client)})
    trigger_id = re.search(r"Placed (GTT-\S+?)[ .(]", placed.text).group(1)
    fake_upstox.set_rule_status(trigger_id, "ENTRY", "TRIGGERED", order_id="251202000123")
    upstox_gateway.watcher.sync()  # the pass that sees it (the broker's postback would settle it the same way)
    detail = upstox_client.get(f"/ui/gtt?trigger_id={trigger_id}", headers={"HX-Request": "true"}).text
    assert "Upstox status" in detail and "251202000123" in detail
    assert "triggered, by the watcher&#39;s pass" in detail
    assert "POST /ui/placegtt" in detail  # and the request that placed it, before


def test_without_an_upstox_token_the_header_offers_the_login(settings, tmp_path):
    import dataclasses

    from openalgo_gtt.app import create_app
    from openalgo_gtt.gateway import Gateway
    from openalgo_gtt.store.migrate import upgrade

    upstox = dataclasses.replace(settings, broker="upstox", upstox_api_key="app-key", upstox_api_secret="app-secret",
                                 upstox_redirect_uri="http://127.0.0.1:5000/upstox/callback")
    upgrade(upstox.database_url)
    gateway = Gateway.build(upstox)
    try:
        key = gateway.api_keys.create("trader")
        client = create_app(gateway=gateway).test_client()
        sign_in(client, key)
        header = client.get("/ui/header").text
        assert "Upstox token: <strong>missing</strong>" in header and 'href="/ui/upstox/login">Log in to Upstox' in header
        login = client.get("/ui/upstox/login")
        assert login.status_code == 302 and "client_id=app-key" in login.headers["Location"]
        assert key not in login.headers["Location"]
        with gateway.engine.connect() as conn:
            audited = conn.execute(select(AuditRecord.endpoint, AuditRecord.http_status)
                                   .where(AuditRecord.endpoint == "/ui/upstox/login")).all()
        assert [tuple(r) for r in audited] == [("/ui/upstox/login", 302)]
    finally:
        gateway.close()


def test_a_rows_life_lists_the_requests_that_named_it(client, app, api_key):
    sign_in(client, api_key)
    csrf = page_csrf(client)
    client.post("/ui/sandbox/ticks", data={"symbol": "IDEA", "exchange": "NSE", "price": "9.5", "csrf_token": csrf})
    placed = client.post("/ui/placegtt", data={"symbol": "IDEA", "exchange": "NSE", "action": "BUY", "quantity": "1",
                                               "product": "CNC", "trigger_type": "SINGLE", "trigger_price": "9.6",
                                               "csrf_token": csrf})
    trigger_id = re.search(r"Placed (GTT-\S+?) ", placed.text).group(1)
    client.post("/ui/cancelgtt", data={"trigger_id": trigger_id, "csrf_token": csrf})
    detail = client.get(f"/ui/gtt?trigger_id={trigger_id}").text
    life = detail[detail.index("Its life"):]
    assert life.index("POST /ui/placegtt") < life.index("POST /ui/cancelgtt")  # oldest first
    assert "cancelled" in detail


def test_a_failed_poll_says_so_and_keeps_polling(upstox_client, upstox_key, fake_upstox):
    sign_in(upstox_client, upstox_key)
    fake_upstox.inject("gtt.details", "500", times=None)
    poll = upstox_client.get("/ui/gtts?status=active", headers={"HX-Request": "true"})
    assert poll.status_code == 502 and "Upstox failed" in poll.text
    assert 'id="gtt-book"' in poll.text and 'hx-trigger="every 2s' in poll.text  # the next poll is in it
    fake_upstox.clear_faults()
    assert "No active GTTs." in upstox_client.get("/ui/gtts?status=active").text


def test_the_header_shows_the_notifications_outbox(settings, api_key):
    import dataclasses

    with secured_app(settings) as app:
        client = app.test_client()
        sign_in(client, api_key)
        assert "Notifications: <strong>off</strong>" in client.get("/").text
    secret_url = "json://127.0.0.1:9/hook?token=s3cret"
    with secured_app(dataclasses.replace(settings, notify_urls=(secret_url,))) as app:
        gateway = app.extensions["openalgo_gtt"]
        with gateway.store.unit_of_work() as uow:
            gateway.notifications.emit(uow, Event(kind=EventKind.TRIGGERED, at=utcnow(), trigger_id="GTT-1"))
        client = app.test_client()
        sign_in(client, api_key)
        page = client.get("/").text
        assert "Notifications: <strong>1 URL</strong>, 1 pending, 0 failed" in page
        assert "s3cret" not in page and "hook" not in page  # the URL never shows
