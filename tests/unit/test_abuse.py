"""The security settings' parsers, the policy, the address filter and the failed-key throttle."""
from __future__ import annotations

import types

import pytest
from limits.storage import MemoryStorage

from openalgo_gtt.services.abuse import (
    DEFAULT_FAILED_KEY_LIMIT,
    DEFAULT_RATE_LIMIT,
    AddressFilter,
    FailedKeyThrottle,
    SecurityPolicy,
    parse_allowed_ips,
    parse_bool,
    parse_rate_limit,
    parse_storage_uri,
    parse_trusted_proxies,
    path_is_under,
)


@pytest.mark.parametrize("raw", ["50 per second;600 per minute", "50/second; 600/minute", "5/minute", "1 per 30 seconds"])
def test_rate_limits_parse(raw):
    assert parse_rate_limit(f"  {raw} ") == raw


@pytest.mark.parametrize("raw", ["", "fast", "50 per fortnight", "-1/second", "per second"])
def test_bad_rate_limits_are_refused(raw):
    with pytest.raises(ValueError, match="must be rate limits"):
        parse_rate_limit(raw)


def test_the_default_lets_a_burst_of_40_through():
    from limits import parse_many

    assert min(item.amount for item in parse_many(DEFAULT_RATE_LIMIT)) >= 40
    assert parse_rate_limit(DEFAULT_FAILED_KEY_LIMIT)


@pytest.mark.parametrize("raw,value", [("true", True), ("1", True), ("YES", True), ("off", False), ("0", False), ("False", False)])
def test_booleans(raw, value):
    assert parse_bool(raw) is value


def test_a_bad_boolean_is_refused():
    with pytest.raises(ValueError, match="true or false"):
        parse_bool("maybe")


@pytest.mark.parametrize("raw", ["memory://", "redis://127.0.0.1:6379", "redis://127.0.0.1:6379/2", "rediss://host:6380/0"])
def test_storage_uris(raw):
    assert parse_storage_uri(raw) == raw


@pytest.mark.parametrize("raw", ["127.0.0.1:6379", "http://x", "async+memory://", "postgres://x"])
def test_bad_storage_uris_are_refused(raw):
    with pytest.raises(ValueError, match="storage URI"):
        parse_storage_uri(raw)


@pytest.mark.parametrize("raw,value", [("0", 0), ("1", 1), (" 2 ", 2)])
def test_trusted_proxies(raw, value):
    assert parse_trusted_proxies(raw) == value


@pytest.mark.parametrize("raw", ["-1", "11", "one"])
def test_bad_trusted_proxies_are_refused(raw):
    with pytest.raises(ValueError):
        parse_trusted_proxies(raw)


def test_allowed_ips_parse_addresses_and_networks():
    assert parse_allowed_ips("52.89.214.238, 34.212.75.30 10.0.0.0/8,2001:db8::/32 192.168.1.7/24") == (
        "52.89.214.238/32", "34.212.75.30/32", "10.0.0.0/8", "2001:db8::/32", "192.168.1.0/24",
    )
    assert parse_allowed_ips("") == ()


def test_a_bad_allowed_ip_is_named():
    with pytest.raises(ValueError, match="'10.0.0.300' is not an IP address"):
        parse_allowed_ips("10.0.0.1,10.0.0.300")


def test_the_address_filter():
    everyone = AddressFilter(())
    assert not everyone.active and everyone.allows("198.51.100.1") and everyone.allows(None)
    only = AddressFilter(parse_allowed_ips("203.0.113.0/24,2001:db8::1"))
    assert only.active
    assert only.allows("203.0.113.200")
    assert only.allows("::ffff:203.0.113.9")  # IPv4-mapped IPv6, as dual-stack sockets report
    assert only.allows("2001:db8::1")
    assert not only.allows("203.0.114.1")
    assert not only.allows("2001:db8::2")
    assert not only.allows(None) and not only.allows("") and not only.allows("not-an-address")


def test_the_policy_reads_the_settings_and_defaults_what_they_lack():
    bare = types.SimpleNamespace(api_key_pepper="p" * 40)
    policy = SecurityPolicy.from_settings(bare)
    assert (policy.rate_limit, policy.rate_limit_enabled, policy.storage_uri) == (DEFAULT_RATE_LIMIT, True, "memory://")
    assert (policy.failed_key_limit, policy.trusted_proxies, policy.allowed_ips) == (DEFAULT_FAILED_KEY_LIMIT, 0, ())
    full = types.SimpleNamespace(
        api_key_pepper="p" * 40, rate_limit="5/minute", rate_limit_enabled=False,
        rate_limit_storage_uri="redis://127.0.0.1:6379/0", failed_key_limit="3/minute", trusted_proxies=1,
        allowed_ips="10.0.0.0/8",
    )
    policy = SecurityPolicy.from_settings(full)
    assert (policy.rate_limit, policy.rate_limit_enabled, policy.storage_uri) == ("5/minute", False, "redis://127.0.0.1:6379/0")
    assert (policy.failed_key_limit, policy.trusted_proxies, policy.allowed_ips) == ("3/minute", 1, ("10.0.0.0/8",))


def test_fingerprints_are_keyed_by_the_pepper_and_never_the_key():
    key = "ab" * 32
    one = SecurityPolicy.from_settings(types.SimpleNamespace(api_key_pepper="p" * 40))
    same = SecurityPolicy.from_settings(types.SimpleNamespace(api_key_pepper="p" * 40))
    other = SecurityPolicy.from_settings(types.SimpleNamespace(api_key_pepper="q" * 40))
    assert one.fingerprint(key) == same.fingerprint(key) != other.fingerprint(key)
    assert key not in one.fingerprint(key) and key[:16] not in one.fingerprint(key)
    assert one.key_prefix == same.key_prefix != other.key_prefix  # deployments sharing a Redis do not mix


def test_paths_under_prefixes():
    assert path_is_under("/api/docs", ("/api/docs",)) and path_is_under("/api/docs/x", ("/api/docs",))
    assert not path_is_under("/api/docsx", ("/api/docs",))
    assert path_is_under("/swaggerui/a.js", ("/swaggerui/",)) and not path_is_under("/swaggerui", ("/swaggerui/",))


def test_the_throttle_counts_failures_per_address_and_remembers_good_keys():
    throttle = FailedKeyThrottle(MemoryStorage(), "2 per minute", "t")
    assert throttle.retry_after("a") is None
    throttle.note_failure("a")
    throttle.note_failure("a")
    assert 1 <= throttle.retry_after("a") <= 60
    assert throttle.retry_after("b") is None
    assert not throttle.is_known_good("f1")
    throttle.note_good("f1")
    assert throttle.known_good_here("f1") and throttle.is_known_good("f1")
    # another process sharing the storage learns it from the storage
    elsewhere = FailedKeyThrottle(throttle._storage, "2 per minute", "t")
    assert not elsewhere.known_good_here("f1") and elsewhere.is_known_good("f1")


def test_the_throttle_fails_open_when_its_storage_fails():
    class Broken(MemoryStorage):
        def incr(self, *a, **k):
            raise ConnectionError("gone")

        get = clear = acquire_entry = get_moving_window = incr

    throttle = FailedKeyThrottle(Broken(), "1 per minute", "t")
    throttle.note_failure("a")  # logged, not raised
    throttle.note_good("f")
    assert throttle.retry_after("a") is None
    assert throttle.is_known_good("x")  # in doubt, never refuse a trader


def test_after_a_storage_failure_the_throttle_leaves_the_storage_alone_for_a_while(monkeypatch):
    calls = []

    class Broken(MemoryStorage):
        def acquire_entry(self, *a, **k):
            calls.append("hit")
            raise TimeoutError("redis is not answering")

        def get_moving_window(self, *a, **k):
            calls.append("test")
            raise TimeoutError("redis is not answering")

    throttle = FailedKeyThrottle(Broken(), "1 per minute", "t")
    throttle.note_failure("a")
    for _ in range(5):
        assert throttle.retry_after("a") is None
        throttle.note_failure("a")
    assert calls == ["hit"]  # one timeout, then failing open without waiting on the storage
    clock = __import__("time").monotonic() + FailedKeyThrottle.STORAGE_PAUSE + 1
    monkeypatch.setattr("openalgo_gtt.services.abuse.time.monotonic", lambda: clock)
    assert throttle.retry_after("a") is None
    assert calls == ["hit", "test"]  # tried again after the pause
