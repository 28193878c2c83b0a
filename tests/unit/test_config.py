"""Configuration: precedence, defaults and one-line failures."""
from __future__ import annotations

import json
import stat
from decimal import Decimal

import pytest

from openalgo_gtt.config import ConfigError, load_settings

PEPPER = "p" * 40


def test_defaults_on_a_fresh_directory(tmp_path, data_folder):
    settings = load_settings({}, tmp_path)
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.broker == "sandbox"  # no token anywhere
    # The database is the data folder's (the per-user one here), not the working directory's.
    assert settings.database_url == f"sqlite:///{data_folder / 'openalgo_gtt.db'}"
    assert settings.data_dir == data_folder
    assert settings.upstox_api_url == "https://api.upstox.com"
    assert settings.auto_entry_pct == Decimal("4")


def test_environment_beats_dotenv(tmp_path):
    (tmp_path / ".env").write_text("PORT=6001\nHOST=0.0.0.0\nDAILY_TRADE_LIMIT=3\n")
    settings = load_settings({"PORT": "7002", "API_KEY_PEPPER": PEPPER}, tmp_path)
    assert settings.port == 7002
    assert settings.host == "0.0.0.0"
    assert settings.daily_trade_limit == 3


def test_keys_json_beats_environment_for_the_access_token(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps({"access_token": "from-file"}))
    settings = load_settings({"ACCESS_TOKEN": "from-env", "API_KEY_PEPPER": PEPPER}, tmp_path)
    assert settings.access_token == "from-file"
    assert settings.access_token_source == "keys.json"
    assert settings.broker == "upstox"  # a token means the real broker by default


def test_environment_token_when_there_is_no_keys_json(tmp_path):
    settings = load_settings({"ACCESS_TOKEN": "from-env", "API_KEY_PEPPER": PEPPER}, tmp_path)
    assert (settings.access_token, settings.access_token_source) == ("from-env", "environment")


def test_broker_sandbox_can_be_forced_with_a_token(tmp_path):
    settings = load_settings({"ACCESS_TOKEN": "t", "BROKER": "SANDBOX", "API_KEY_PEPPER": PEPPER}, tmp_path)
    assert settings.broker == "sandbox"


def test_the_token_never_shows_in_the_settings_repr(tmp_path):
    settings = load_settings({"ACCESS_TOKEN": "very-secret-token", "API_KEY_PEPPER": PEPPER}, tmp_path)
    assert "very-secret-token" not in repr(settings)
    assert PEPPER not in repr(settings)


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("PORT", "abc", "PORT='abc': must be a whole number"),
        ("PORT", "70000", "PORT='70000': must be between 1 and 65535"),
        ("UPSTOX_TIMEOUT", "0", "UPSTOX_TIMEOUT='0'"),
        ("BROKER", "zerodha", "BROKER='zerodha': must be one of upstox, kite, sandbox"),
        ("DAILY_TRADE_LIMIT", "-1", "DAILY_TRADE_LIMIT='-1': must be a positive whole number"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud'"),
        ("UPSTOX_API_URL", "api.upstox.com", "UPSTOX_API_URL='api.upstox.com': must start with http"),
        ("AUTO_ENTRY_PCT", "NaN", "AUTO_ENTRY_PCT='NaN'"),
        ("API_KEY_PEPPER", "short", "API_KEY_PEPPER=(hidden): must be at least 32 characters"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(tmp_path, name, value, expected):
    environ = {"API_KEY_PEPPER": PEPPER, name: value}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, tmp_path)
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_upstox_broker_without_a_token_fails_at_start(tmp_path):
    with pytest.raises(ConfigError, match="BROKER=upstox"):
        load_settings({"BROKER": "upstox", "API_KEY_PEPPER": PEPPER}, tmp_path)


def test_broken_keys_json_is_a_clear_error(tmp_path):
    (tmp_path / "keys.json").write_text("{not json")
    with pytest.raises(ConfigError, match="keys.json"):
        load_settings({"API_KEY_PEPPER": PEPPER}, tmp_path)


def test_missing_pepper_is_generated_once_into_an_owner_only_file(tmp_path, caplog, data_folder):
    first = load_settings({}, tmp_path)
    pepper_file = data_folder / "api_key_pepper"  # beside the default database
    assert pepper_file.read_text() == first.api_key_pepper
    assert len(first.api_key_pepper) >= 32
    assert stat.S_IMODE(pepper_file.stat().st_mode) == 0o600
    assert sum("API_KEY_PEPPER is not set" in r.message for r in caplog.records) == 1
    second = load_settings({}, tmp_path)
    assert second.api_key_pepper == first.api_key_pepper  # stable across restarts
    assert sum("API_KEY_PEPPER is not set" in r.message for r in caplog.records) == 1
