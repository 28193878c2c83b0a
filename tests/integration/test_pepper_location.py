"""Defect 5: the command line and the server agree on the pepper whatever the working directory,
and a process holding another pepper is refused with a clear message, never printing a key."""
from __future__ import annotations

import dataclasses

import re

import pytest
from click.testing import CliRunner

from openalgo_gtt.cli import cli
from openalgo_gtt.config import ConfigError, load_settings
from openalgo_gtt.gateway import Gateway
from openalgo_gtt.startup import check_pepper_or_exit
from openalgo_gtt.store.migrate import upgrade

KEY = re.compile(r"\b[0-9a-f]{16}\.[0-9a-f]{64}\b")


@pytest.fixture
def database(tmp_path):
    return tmp_path / "shared" / "gtt.db"


def run(monkeypatch, cwd, database, *args, **env):
    cwd.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(cwd)
    environ = {"DATABASE_URL": f"sqlite:///{database}", "API_KEY_PEPPER": None, **env}
    return CliRunner().invoke(cli, list(args), env=environ, catch_exceptions=False)


def create(monkeypatch, cwd, database):
    """The database made as the server or `db upgrade` makes it (no other command makes one)."""
    made = run(monkeypatch, cwd, database, "db", "upgrade")
    assert made.exit_code == 0, made.output


def verify_with_server_settings(cwd, database, key):
    settings = load_settings({"DATABASE_URL": f"sqlite:///{database}"}, cwd, read_dotenv=False)
    gateway = Gateway.build(settings)
    try:
        return gateway.api_keys.verify(key)
    finally:
        gateway.close()


def test_a_key_created_from_another_directory_works_for_the_server(tmp_path, database, monkeypatch):
    server_dir, elsewhere = tmp_path / "server", tmp_path / "elsewhere"
    create(monkeypatch, server_dir, database)
    first = run(monkeypatch, server_dir, database, "apikey", "create", "one")
    assert first.exit_code == 0, first.output
    assert (database.parent / "api_key_pepper").exists()  # beside the database, not in either directory
    second = run(monkeypatch, elsewhere, database, "apikey", "create", "two")
    assert second.exit_code == 0, second.output
    key = KEY.search(second.output).group(0)
    assert not (elsewhere / "data" / "api_key_pepper").exists()
    assert verify_with_server_settings(server_dir, database, key).name == "two"


def test_another_pepper_is_refused_with_a_clear_message_and_no_key(tmp_path, database, monkeypatch):
    create(monkeypatch, tmp_path / "server", database)
    assert run(monkeypatch, tmp_path / "server", database, "apikey", "create", "one").exit_code == 0
    refused = run(monkeypatch, tmp_path / "elsewhere", database, "apikey", "create", "two",
                  API_KEY_PEPPER="another-pepper-" + "w" * 32)
    assert refused.exit_code == 2
    assert "API_KEY_PEPPER" in refused.output and "the API_KEY_PEPPER variable" in refused.output
    assert "api_key_pepper file beside the database" in refused.output
    assert not KEY.search(refused.output)
    listed = run(monkeypatch, tmp_path / "server", database, "apikey", "list")
    assert "two" not in listed.output


def test_a_pepper_file_from_an_earlier_run_elsewhere_is_refused_too(tmp_path, database, monkeypatch):
    """The security pass's case: another directory generated its own pepper into data/ before."""
    create(monkeypatch, tmp_path / "server", database)
    assert run(monkeypatch, tmp_path / "server", database, "apikey", "create", "one").exit_code == 0
    stale = tmp_path / "elsewhere" / "data" / "api_key_pepper"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale-pepper-" + "s" * 40)
    (database.parent / "api_key_pepper").rename(tmp_path / "moved")  # as if the file were still in server/data
    refused = run(monkeypatch, tmp_path / "elsewhere", database, "apikey", "create", "two")
    assert refused.exit_code == 2 and "API_KEY_PEPPER" in refused.output and str(stale) in refused.output
    assert not KEY.search(refused.output)


def test_no_pepper_is_invented_for_an_existing_database(tmp_path, database, monkeypatch):
    create(monkeypatch, tmp_path / "server", database)
    assert run(monkeypatch, tmp_path / "server", database, "apikey", "create", "one").exit_code == 0
    (database.parent / "api_key_pepper").unlink()
    with pytest.raises(ConfigError, match="API_KEY_PEPPER is not set and there is no pepper file"):
        load_settings({"DATABASE_URL": f"sqlite:///{database}"}, tmp_path / "elsewhere", read_dotenv=False)
    refused = run(monkeypatch, tmp_path / "elsewhere", database, "apikey", "create", "two")
    assert refused.exit_code == 2 and "API_KEY_PEPPER" in refused.output and not KEY.search(refused.output)


def test_a_database_whose_pepper_is_still_in_the_servers_data_directory_keeps_working(tmp_path, monkeypatch):
    """Before, the pepper was generated into data/ of the working directory even for a database
    elsewhere: the server, started from there, still finds it."""
    database = tmp_path / "db" / "gtt.db"
    server_dir = tmp_path / "server"
    (server_dir / "data").mkdir(parents=True)
    (server_dir / "data" / "api_key_pepper").write_text("earlier-pepper-" + "e" * 40)
    database.parent.mkdir()
    database.touch()
    settings = load_settings({"DATABASE_URL": f"sqlite:///{database}"}, server_dir, read_dotenv=False)
    assert settings.api_key_pepper == "earlier-pepper-" + "e" * 40
    assert str(server_dir / "data" / "api_key_pepper") in settings.api_key_pepper_source


def test_the_server_refuses_to_start_under_another_pepper(settings, capsys):
    upgrade(settings.database_url)
    right = Gateway.build(settings)
    right.api_keys.create("one")
    check_pepper_or_exit(right, server=True)
    right.close()
    wrong = Gateway.build(dataclasses.replace(settings, api_key_pepper="another-pepper-" + "w" * 32))
    try:
        with pytest.raises(SystemExit) as stopped:
            check_pepper_or_exit(wrong, server=True)
    finally:
        wrong.close()
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "refusing to start" in message and "API_KEY_PEPPER" in message
