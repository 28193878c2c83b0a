"""`python run.py` starts waitress with a connection limit and a channel timeout, from the settings,
on its poll() loop, with the connection limit fitted to the descriptor limit (issue 25)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import openalgo_gtt.app
import openalgo_gtt.cli.server as server_module
from openalgo_gtt.cli import cli, waitress_server
from openalgo_gtt.config import ConfigError, Settings, load_settings

PEPPER = "p" * 40


def test_the_server_is_started_with_the_connection_limit_and_channel_timeout(monkeypatch):
    settings = Settings(host="127.0.0.1", port=5123, server_threads=6, server_connection_limit=321,
                        server_channel_timeout=9)
    app = object()
    started, closed = {}, []

    class Gateway:
        def close(self):
            closed.append(True)

    monkeypatch.setattr(server_module, "settings_or_exit", lambda *_store: settings)
    monkeypatch.setattr(server_module, "prepare", lambda _settings, **_create: Gateway())
    monkeypatch.setattr(server_module, "check_pepper_or_exit", lambda *a, **k: None)
    monkeypatch.setattr(server_module, "_start_watcher", lambda _gateway: None)
    monkeypatch.setattr(openalgo_gtt.app, "create_app", lambda gateway: app)
    monkeypatch.setattr(waitress_server, "fit_connection_limit", lambda wanted: (wanted, None))

    class Server:
        def __init__(self, wsgi, **options):
            started.update(options, app=wsgi)

        def print_listen(self, _format):
            pass

        def run(self):
            pass

    monkeypatch.setattr(waitress_server, "create_server", Server)

    result = CliRunner().invoke(cli, [])  # no command: serve
    assert result.exit_code == 0, result.output
    assert started["app"] is app
    assert (started["host"], started["port"], started["threads"]) == ("127.0.0.1", 5123, 6)
    assert started["connection_limit"] == 321
    assert started["channel_timeout"] == 9
    assert started["cleanup_interval"] <= 9  # idle connections are looked for at least that often
    assert started["asyncore_use_poll"] is True  # select() cannot watch descriptors past 1023
    assert started["clear_untrusted_proxy_headers"] is False  # TRUSTED_PROXIES decides, in the app
    assert closed == [True]  # once waitress returns, the gateway is closed (the watcher's lease handed back)


def test_the_defaults_are_1000_connections_and_15_seconds(tmp_path):
    settings = load_settings({"API_KEY_PEPPER": PEPPER}, tmp_path)
    assert (settings.server_connection_limit, settings.server_channel_timeout) == (1000, 15)
    options = waitress_server.serve_options(settings)
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


class FakeResource:
    RLIMIT_NOFILE, RLIM_INFINITY = 7, -1

    def __init__(self, soft, hard):
        self.limits = (soft, hard)

    def getrlimit(self, _which):
        return self.limits

    def setrlimit(self, _which, limits):
        if limits[0] > limits[1]:
            raise ValueError("soft above hard")
        self.limits = limits


def test_the_soft_descriptor_limit_is_raised_toward_the_hard_one_when_the_connection_limit_needs_it():
    fake = FakeResource(1024, 65536)
    limit, note = waitress_server.fit_connection_limit(1000, resource_module=fake, in_use=30)
    assert (limit, note) == (1000, None)
    assert fake.limits == (1000 + 30 + waitress_server.RESERVED_DESCRIPTORS, 65536)


def test_a_connection_limit_the_hard_limit_cannot_hold_is_lowered_with_one_line_saying_so():
    fake = FakeResource(1024, 1024)
    limit, note = waitress_server.fit_connection_limit(5000, resource_module=fake, in_use=30)
    assert limit == 1024 - 30 - waitress_server.RESERVED_DESCRIPTORS
    assert "SERVER_CONNECTION_LIMIT=5000 does not fit the open-file limit (1024, hard 1024)" in note
    assert f"serving at most {limit} connections" in note


def test_a_descriptor_limit_too_small_to_serve_refuses_to_start_with_a_clear_message():
    with pytest.raises(waitress_server.ServerStartError, match="raise it"):
        waitress_server.fit_connection_limit(1000, resource_module=FakeResource(128, 128), in_use=30)


def test_on_windows_the_limit_stays_under_what_select_can_watch():
    assert waitress_server.fit_connection_limit(1000, platform="win32")[0] == waitress_server.WINDOWS_SELECT_SOCKETS
