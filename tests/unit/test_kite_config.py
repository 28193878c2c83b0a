"""BROKER=kite: its settings, where its token comes from, and what it refuses to start without."""
from __future__ import annotations

import json

import pytest

from openalgo_gtt.config import ConfigError, load_settings

PEPPER = "p" * 40


def test_kite_settings_and_defaults(tmp_path):
    settings = load_settings({"BROKER": "kite", "KITE_API_KEY": "k", "KITE_ACCESS_TOKEN": "from-env",
                              "API_KEY_PEPPER": PEPPER}, tmp_path, read_dotenv=False)
    assert settings.broker == "kite" and settings.kite_api_key == "k"
    assert (settings.kite_access_token, settings.kite_access_token_source) == ("from-env", "environment")
    assert settings.kite_api_url == "https://api.kite.trade"
    assert settings.kite_login_url == "https://kite.zerodha.com/connect/login"
    assert (settings.kite_order_rate_limits, settings.kite_quote_rate_limits) == ("10/second", "1/second")
    assert "from-env" not in repr(settings)


def test_keys_json_kite_token_beats_the_environment(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps({"kite_access_token": "from-file"}))
    settings = load_settings({"BROKER": "kite", "KITE_API_KEY": "k", "KITE_ACCESS_TOKEN": "from-env",
                              "API_KEY_PEPPER": PEPPER}, tmp_path, read_dotenv=False)
    assert (settings.kite_access_token, settings.kite_access_token_source) == ("from-file", "keys.json")


@pytest.mark.parametrize("environ, words", [
    ({"BROKER": "kite", "KITE_ACCESS_TOKEN": "t"}, "BROKER=kite: set KITE_API_KEY"),
    ({"BROKER": "kite", "KITE_API_KEY": "k"}, "BROKER=kite: no Kite access token"),
    ({"BROKER": "kite", "KITE_API_KEY": "k", "KITE_API_SECRET": "s", "KITE_API_URL": "ftp://x"},
     "KITE_API_URL='ftp://x': must start with http"),
])
def test_refusals(tmp_path, environ, words):
    with pytest.raises(ConfigError, match=words):
        load_settings({**environ, "API_KEY_PEPPER": PEPPER}, tmp_path, read_dotenv=False)


def test_a_secret_alone_is_enough_to_start_and_log_in(tmp_path):
    settings = load_settings({"BROKER": "kite", "KITE_API_KEY": "k", "KITE_API_SECRET": "s",
                              "API_KEY_PEPPER": PEPPER}, tmp_path, read_dotenv=False)
    assert settings.kite_access_token is None and "kite_api_secret" not in repr(settings)
