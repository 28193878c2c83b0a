"""The security layer as the running service gets it: settings read by load_settings(), the layer
installed by create_app()."""
from __future__ import annotations

import json

import pytest

from openalgo_gtt.app import create_app
from openalgo_gtt.config import ConfigError, load_settings
from openalgo_gtt.services.abuse import DEFAULT_FAILED_KEY_LIMIT, DEFAULT_RATE_LIMIT

PEPPER = "p" * 40


def test_the_security_settings_default_sensibly(tmp_path):
    settings = load_settings({"API_KEY_PEPPER": PEPPER}, tmp_path)
    assert settings.rate_limit == DEFAULT_RATE_LIMIT
    assert settings.rate_limit_enabled is True
    assert settings.rate_limit_storage_uri == "memory://"
    assert settings.failed_key_limit == DEFAULT_FAILED_KEY_LIMIT
    assert settings.trusted_proxies == 0
    assert settings.allowed_ips == ()


def test_the_security_settings_are_read_from_the_environment(tmp_path):
    settings = load_settings({
        "API_KEY_PEPPER": PEPPER, "RATE_LIMIT": "5/second;100/minute", "RATE_LIMIT_ENABLED": "false",
        "RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0", "FAILED_KEY_LIMIT": "10 per minute",
        "TRUSTED_PROXIES": "1", "ALLOWED_IPS": "52.89.214.238, 34.212.75.30,10.0.0.0/8",
    }, tmp_path)
    assert (settings.rate_limit, settings.rate_limit_enabled) == ("5/second;100/minute", False)
    assert settings.rate_limit_storage_uri == "redis://127.0.0.1:6379/0"
    assert (settings.failed_key_limit, settings.trusted_proxies) == ("10 per minute", 1)
    assert settings.allowed_ips == ("52.89.214.238/32", "34.212.75.30/32", "10.0.0.0/8")


@pytest.mark.parametrize("name,raw,fragment", [
    ("RATE_LIMIT", "lots", "must be rate limits"),
    ("RATE_LIMIT_ENABLED", "perhaps", "true or false"),
    ("RATE_LIMIT_STORAGE_URI", "localhost:6379", "memory://"),
    ("FAILED_KEY_LIMIT", "20", "must be rate limits"),
    ("TRUSTED_PROXIES", "-1", "between 0 and"),
    ("ALLOWED_IPS", "10.0.0.0/8,nowhere", "'nowhere' is not an IP address"),
])
def test_a_bad_security_setting_names_the_variable(tmp_path, name, raw, fragment):
    with pytest.raises(ConfigError) as error:
        load_settings({"API_KEY_PEPPER": PEPPER, name: raw}, tmp_path)
    assert str(error.value).startswith(f"{name}=") and fragment in str(error.value)


def test_create_app_installs_the_security_layer(gateway, api_key):
    app = create_app(gateway=gateway)
    assert "openalgo_gtt_security" in app.extensions
    client = app.test_client()
    response = client.post("/api/v1/ping", data=json.dumps({"apikey": api_key}))
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "script-src 'self' 'sha256-" in client.get("/api/docs").headers["Content-Security-Policy"]
