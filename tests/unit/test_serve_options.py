"""`python run.py` starts waitress with a connection limit and a channel timeout, from the settings."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import openalgo_gtt.app
import openalgo_gtt.cli.server as server_module
from openalgo_gtt.cli import cli
from openalgo_gtt.config import ConfigError, Settings, load_settings

PEPPER = "p" * 40


def test_the_server_is_started_with_the_connection_limit_and_channel_timeout(monkeypatch):
    import waitress

    settings = Settings(host="127.0.0.1", port=5123, server_threads=6, server_connection_limit=321,
                        server_channel_timeout=9)
    app = object()
    started, closed = {}, []

    class Gateway:
        def close(self):
            closed.append(True)

    monkeypatch.setattr(server_module, "settings_or_exit", lambda: settings)
    monkeypatch.setattr(server_module, "prepare", lambda _settings: Gateway())
    monkeypatch.setattr(server_module, "check_pepper_or_exit", lambda *a, **k: None)
    monkeypatch.setattr(server_module, "_start_watcher", lambda _gateway: None)
    monkeypatch.setattr(openalgo_gtt.app, "create_app", lambda gateway: app)
    monkeypatch.setattr(waitress, "serve", lambda wsgi, **options: started.update(options, app=wsgi))

    result = CliRunner().invoke(cli, [])  # no command: serve
    assert result.exit_code == 0, result.output
    assert started["app"] is app
    assert (started["host"], started["port"], started["threads"]) == ("127.0.0.1", 5123, 6)
    assert started["connection_limit"] == 321
    assert started["channel_timeout"] == 9
    assert started["cleanup_interval"] <= 9  # idle connections are looked for at least that often
    assert closed == [True]  # once waitress returns, the gateway is closed (the watcher's lease handed back)


def test_the_defaults_are_1000_connections_and_15_seconds(tmp_path):
    settings = load_settings({"API_KEY_PEPPER": PEPPER}, tmp_path)
    assert (settings.server_connection_limit, settings.server_channel_timeout) == (1000, 15)
    options = server_module.serve_options(settings)
    assert (options["connection_limit"], options["channel_timeout"]) == (1000, 15)


def test_the_server_settings_are_read_from_the_environment(tmp_path):
    settings = load_settings({"API_KEY_PEPPER": PEPPER, "SERVER_CONNECTION_LIMIT": "250",
                              "SERVER_CHANNEL_TIMEOUT": "30", "AUDIT_RETENTION_DAYS": "0"}, tmp_path)
    assert (settings.server_connection_limit, settings.server_channel_timeout) == (250, 30)
    assert settings.audit_retention_days == 0
    assert load_settings({"API_KEY_PEPPER": PEPPER}, tmp_path).audit_retention_days == 90


@pytest.mark.parametrize("name,value", [("SERVER_CONNECTION_LIMIT", "0"), ("SERVER_CHANNEL_TIMEOUT", "0"),
                                        ("SERVER_CHANNEL_TIMEOUT", "1.5"), ("AUDIT_RETENTION_DAYS", "-1")])
def test_bad_server_and_retention_settings_are_one_line_errors(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name}="):
        load_settings({"API_KEY_PEPPER": PEPPER, name: value}, tmp_path)
