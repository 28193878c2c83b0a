"""Response headers for an API on every response, and a Swagger UI that still works under its CSP."""
from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from openalgo_gtt.api.security import API_CSP
from tests.integration.secured_app import ping, secured_app

API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def app(settings, gateway):
    # 10 per minute: the keyless and wrong-key requests below all count against the one test address
    with secured_app(settings, rate_limit="10 per minute", failed_key_limit="1 per minute") as application:
        yield application


@pytest.fixture
def client(app):
    return app.test_client()


def assert_api_headers(response, csp=API_CSP):
    for name, value in API_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.path, name)
        assert len(response.headers.getlist(name)) == 1
    assert response.headers["Content-Security-Policy"] == csp


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def test_every_kind_of_response_carries_the_api_headers(client, api_key, monkeypatch):
    responses = [
        ping(client, api_key),  # 200
        client.get("/api/health"),  # 200, not audited
        client.post("/api/v1/ping", data="[1]"),  # 400
        client.post("/api/v1/nothing-here", data="{}"),  # 404
        client.get("/api/v1/ping"),  # 405
        client.post("/api/v1/ping", data=json.dumps({"apikey": "k", "pad": "x" * (1024 * 1024)})),  # 413
        client.get("/api/gtt/orders", headers={"X-API-KEY": api_key}),  # the seed engine's route
        client.get("/api/swagger.json"),
        client.get("/not-a-page"),  # outside the API (the trader's page at / has its own policy)
    ]
    responses.append(ping(client, "wrong"))  # 403
    responses.append(ping(client, "wrong-again"))  # 429: the failed-key throttle
    monkeypatch.setattr("openalgo_gtt.api.v1.caller_from_body", lambda: 1 / 0)
    responses.append(ping(client, api_key))  # 500
    assert [r.status_code for r in responses] == [200, 200, 400, 404, 405, 413, 200, 200, 404, 403, 429, 500]
    for response in responses:
        assert_api_headers(response)


def test_the_docs_page_has_a_policy_that_allows_exactly_what_swagger_ui_loads(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    for name, value in API_HEADERS.items():
        assert page.headers[name] == value
    directives = csp_directives(page)
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]  # swagger.json and "Try it out": this server only
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]

    html = page.get_data()
    inline = [body for body in re.findall(rb"<script>(.*?)</script>|<script type=\"text/javascript\">(.*?)</script>", html, re.DOTALL)]
    inline_bodies = [a or b for a, b in inline if (a or b).strip()]
    assert inline_bodies, "the page initialises Swagger UI in an inline script"
    for body in inline_bodies:
        digest = "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        assert digest in directives["script-src"]

    # Every script and stylesheet the page names comes from this server, and is served.
    assets = re.findall(rb'<script src="([^"]+)"', html) + re.findall(rb'<link[^>]+href="([^"]+)"', html)
    assert len(assets) >= 4
    for asset in (a.decode() for a in assets):
        assert asset.startswith("/swaggerui/"), asset  # 'self'
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert csp_directives(served)["default-src"] == ["'none'"]

    # Swagger UI's stylesheets use data: images and fonts from this server.
    assert "data:" in directives["img-src"]
    assert "'self'" in directives["font-src"] and "'self'" in directives["style-src"]
    css = client.get("/swaggerui/droid-sans.css").get_data(as_text=True)
    assert "http://" not in css and "https://" not in css


def test_the_relaxed_policy_is_only_for_the_docs(client):
    assert_api_headers(client.get("/api/swagger.json"))
    assert_api_headers(client.get("/api/docsx"))  # a 404 that merely looks like the docs
    assert "script-src" in client.get("/swaggerui/swagger-ui-bundle.js").headers["Content-Security-Policy"]
