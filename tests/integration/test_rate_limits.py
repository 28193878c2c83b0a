"""Caller rate limits, the failed-key throttle, TRUSTED_PROXIES and ALLOWED_IPS (api/security.py).

Limits here are per minute so that no assertion depends on how fast the machine is. The shared
storage cases use the Redis on this machine (TEST_REDIS_URL, default redis://127.0.0.1:6379/0);
they skip without one unless OPENALGO_GTT_REQUIRE_REDIS=1 (CI), which makes that a failure.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor


from openalgo_gtt.services.abuse import DEFAULT_RATE_LIMIT
from tests.integration.secured_app import audit_rows, ping, secured_app

def assert_refusal(response, fragment: str) -> dict:
    assert response.status_code == 429
    body = response.get_json()
    if body.pop("success", None) is not False:  # the seed engine's routes add success: false
        assert response.request.path.startswith("/api/v1/")
    assert set(body) == {"status", "message", "retry_after", "request_id"}
    assert body["status"] == "error"
    assert fragment in body["message"]
    assert isinstance(body["retry_after"], int) and 1 <= body["retry_after"] <= 60
    assert response.headers["Retry-After"] == str(body["retry_after"])
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


# -- caller limits ----------------------------------------------------------------------------


def test_over_the_limit_is_a_429_envelope_with_retry_after_and_exactly_one_audit_row(settings, gateway, api_key):
    with secured_app(settings, rate_limit="3 per minute") as app:
        client = app.test_client()
        responses = [ping(client, api_key) for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        body = assert_refusal(responses[-1], "Rate limit exceeded for this API key (3 per 1 minute)")
        assert "Retry-After" not in responses[0].headers
        rows = audit_rows(gateway)
        assert [r.request_id for r in rows] == [r.headers["X-Request-ID"] for r in responses]
        refused = rows[-1]
        assert (refused.endpoint, refused.http_status) == ("/api/v1/ping", 429)
        assert refused.error == body["message"]
        assert refused.response_body["retry_after"] == body["retry_after"]
        assert refused.request_body == {"apikey": "***"}


def test_the_limit_is_per_api_key_across_every_endpoint_and_key_location(settings, gateway, api_key):
    other = gateway.api_keys.create("other")
    with secured_app(settings, rate_limit="2 per minute") as app:
        client = app.test_client()
        assert ping(client, api_key).status_code == 200
        # the seed engine's route, key in the header: the same caller, the same budget
        assert client.get("/api/gtt/orders", headers={"X-API-KEY": api_key}).status_code == 200
        assert_refusal(ping(client, api_key), "this API key")
        assert_refusal(client.get("/api/gtt/orders", query_string={"apikey": api_key}), "this API key")
        assert_refusal(
            client.post("/api/v1/gttorderbook", data=json.dumps({"apikey": api_key})), "this API key"
        )
        assert ping(client, other).status_code == 200  # another key has its own budget


def burst(app, key, size=40) -> list[int]:
    def alert(_):
        return ping(app.test_client(), key).status_code

    with ThreadPoolExecutor(max_workers=size) as pool:
        return list(pool.map(alert, range(size)))


def test_a_burst_of_40_alerts_from_one_key_arriving_together_is_not_refused(settings, gateway, api_key):
    with secured_app(settings) as app:  # the default RATE_LIMIT
        assert app.extensions["openalgo_gtt_security"].policy.rate_limit == DEFAULT_RATE_LIMIT
        assert burst(app, api_key) == [200] * 40
    with secured_app(settings, rate_limit="30 per minute") as app:  # the same burst can be limited
        assert sorted(burst(app, api_key)) == [200] * 30 + [429] * 10


def test_requests_without_a_key_count_against_the_client_address(settings, gateway, api_key):
    with secured_app(settings, rate_limit="2 per minute") as app:
        client = app.test_client()
        assert client.post("/api/v1/ping", data="{}").status_code == 403
        assert client.post("/api/v1/ping", data="not json").status_code == 400
        assert_refusal(client.post("/api/v1/ping", data="{}"), "Rate limit exceeded for this address")
        assert ping(client, api_key).status_code == 200  # a key is its own caller


def test_unknown_paths_and_wrong_methods_count_too(settings, gateway, api_key):
    with secured_app(settings, rate_limit="2 per minute") as app:
        client = app.test_client()
        assert client.post("/api/v1/nothing-here", data=json.dumps({"apikey": api_key})).status_code == 404
        assert client.put("/api/v1/ping", data=json.dumps({"apikey": api_key})).status_code == 405
        assert_refusal(ping(client, api_key), "this API key")


def test_health_and_the_docs_are_never_limited(settings, gateway):
    with secured_app(settings, rate_limit="1 per minute", failed_key_limit="1 per minute") as app:
        client = app.test_client()
        for _ in range(3):
            assert client.get("/api/health").status_code == 200
            assert client.get("/api/docs").status_code == 200
            assert client.get("/api/swagger.json").status_code == 200
            assert client.get("/swaggerui/swagger-ui.css").status_code == 200


def test_an_oversized_body_is_still_a_413_with_one_audit_row(settings, gateway):
    with secured_app(settings) as app:
        response = app.test_client().post(
            "/api/v1/ping", data=json.dumps({"apikey": "k", "pad": "x" * (1024 * 1024)})
        )
        assert response.status_code == 413
        assert response.get_json()["message"] == "Request body too large (limit 1 MiB)"
        (row,) = audit_rows(gateway)
        assert row.http_status == 413


def test_rate_limit_enabled_false_switches_limits_and_throttle_off(settings, gateway, api_key):
    with secured_app(
        settings, rate_limit_enabled=False, rate_limit="1 per minute", failed_key_limit="1 per minute"
    ) as app:
        client = app.test_client()
        assert [ping(client, api_key).status_code for _ in range(5)] == [200] * 5
        assert [ping(client, f"wrong-{i}").status_code for i in range(5)] == [403] * 5


# -- shared through Redis ---------------------------------------------------------------------


def test_two_app_instances_share_one_limit_through_redis(settings, gateway, api_key, redis_url):
    url, prefix, redis = redis_url
    security = {"rate_limit": "4 per minute", "rate_limit_storage_uri": url, "rate_limit_key_prefix": prefix}
    with secured_app(settings, **security) as first, secured_app(settings, **security) as second:
        one, two = first.test_client(), second.test_client()
        assert [ping(c, api_key).status_code for c in (one, two, one, two)] == [200] * 4
        assert_refusal(ping(one, api_key), "this API key")
        assert_refusal(ping(two, api_key), "this API key")
    stored = [key.decode() for key in redis.scan_iter(match=f"*{prefix}*")]
    assert stored, "the counts are in Redis"
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    assert not any(api_key in key or digest in key or api_key[:16] in key for key in stored)
    for key in stored:  # nor in any value
        if redis.type(key) == b"string":
            assert api_key.encode() not in (redis.get(key) or b"")
        elif redis.type(key) == b"list":
            assert not any(api_key.encode() in item for item in redis.lrange(key, 0, -1))


def test_the_failed_key_throttle_is_shared_and_a_good_key_works_on_every_instance(
    settings, gateway, api_key, redis_url
):
    url, prefix, _ = redis_url
    security = {"failed_key_limit": "3 per minute", "rate_limit_storage_uri": url, "rate_limit_key_prefix": prefix}
    with secured_app(settings, **security) as first, secured_app(settings, **security) as second:
        one, two = first.test_client(), second.test_client()
        assert ping(one, api_key).status_code == 200  # authenticated on the first instance only
        assert [ping(one, f"guess-{i}").status_code for i in range(3)] == [403] * 3
        assert_refusal(ping(two, "guess-3"), "Too many wrong API keys from this address")
        assert ping(two, api_key).status_code == 200


def test_when_the_storage_is_down_trading_goes_on_and_limits_hold_in_memory(settings, gateway, api_key):
    with secured_app(
        settings, rate_limit="3 per minute", rate_limit_storage_uri="redis://127.0.0.1:1/0"
    ) as app:
        client = app.test_client()
        assert [ping(client, api_key).status_code for _ in range(3)] == [200] * 3
        assert_refusal(ping(client, api_key), "this API key")
        assert ping(client, "wrong").status_code == 403  # the throttle fails open


# -- failed API-key attempts ------------------------------------------------------------------


def test_wrong_keys_from_one_address_are_throttled_but_a_good_key_still_works(settings, gateway, api_key):
    with secured_app(settings, failed_key_limit="3 per minute") as app:
        client = app.test_client()
        assert ping(client, api_key).status_code == 200
        assert [ping(client, f"guess-{i}").status_code for i in range(3)] == [403] * 3
        body = assert_refusal(ping(client, "guess-3"), "Too many wrong API keys from this address (3 per 1 minute)")
        assert_refusal(client.post("/api/v1/ping", data="{}"), "Too many wrong API keys")
        assert_refusal(client.get("/api/gtt/orders", headers={"X-API-KEY": "guess-4"}), "Too many wrong API keys")
        assert ping(client, api_key).status_code == 200
        assert client.get("/api/gtt/orders", headers={"X-API-KEY": api_key}).status_code == 200
        assert client.get("/api/health").status_code == 200
        rows = audit_rows(gateway)
        assert len(rows) == 9 and len({r.request_id for r in rows}) == 9
        assert [r.http_status for r in rows] == [200, 403, 403, 403, 429, 429, 429, 200, 200]
        assert rows[4].error == body["message"] and rows[4].request_body == {"apikey": "***"}


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings, gateway):
    with secured_app(settings, failed_key_limit="2 per minute") as app:
        client = app.test_client()
        for i, forwarded in enumerate(("203.0.113.1", "203.0.113.2")):
            assert ping(client, f"guess-{i}", headers={"X-Forwarded-For": forwarded}).status_code == 403
        assert_refusal(ping(client, "guess-2", headers={"X-Forwarded-For": "203.0.113.3"}), "Too many wrong API keys")
        assert {r.client_addr for r in audit_rows(gateway)} == {"127.0.0.1"}


def test_with_one_trusted_proxy_the_throttle_and_the_audit_see_the_real_client(settings, gateway):
    with secured_app(settings, trusted_proxies=1, failed_key_limit="2 per minute") as app:
        client = app.test_client()
        attacker = {"X-Forwarded-For": "198.51.100.66, 203.0.113.7"}  # the first hop is the caller's claim
        assert [ping(client, f"guess-{i}", headers=attacker).status_code for i in range(2)] == [403, 403]
        assert_refusal(ping(client, "guess-2", headers=attacker), "Too many wrong API keys")
        assert ping(client, "typo", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 403
        rows = audit_rows(gateway)
        assert [r.client_addr for r in rows] == ["203.0.113.7"] * 3 + ["203.0.113.8"]


def test_allowed_ips_refuse_everyone_else_with_403(settings, gateway, api_key):
    with secured_app(settings, trusted_proxies=1, allowed_ips=("203.0.113.0/24", "2001:db8::/32")) as app:
        client = app.test_client()
        assert ping(client, api_key, headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200
        assert ping(client, api_key, headers={"X-Forwarded-For": "2001:db8::1"}).status_code == 200
        refused = ping(client, api_key, headers={"X-Forwarded-For": "198.51.100.1"})
        assert refused.status_code == 403
        assert refused.get_json() == {
            "status": "error", "message": "address not allowed", "request_id": refused.headers["X-Request-ID"],
        }
        assert ping(client, api_key).status_code == 403  # no X-Forwarded-For: the proxy's own address
        assert client.get("/api/health", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 403
        rows = audit_rows(gateway)
        assert [(r.client_addr, r.http_status) for r in rows] == [
            ("203.0.113.5", 200), ("2001:db8::1", 200), ("198.51.100.1", 403), ("127.0.0.1", 403),
        ]
        assert rows[2].error == "address not allowed"


def test_allowed_ips_without_a_proxy_use_the_socket_address(settings, gateway, api_key):
    with secured_app(settings, allowed_ips=("203.0.113.5",)) as app:
        client = app.test_client()
        assert ping(client, api_key).status_code == 403
        assert ping(client, api_key, environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code == 200
        # not trusted: a forwarded address does not get anyone in
        assert ping(client, api_key, headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 403
