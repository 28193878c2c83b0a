"""One database wherever you stand (issue 26): the default database, its pepper and `.env` live in
the data folder (the per-user one, or OPENALGO_GTT_HOME), which every command finds whatever its
working directory; DATABASE_URL still names another; and a command never makes a second, empty
store: only serving and `db upgrade` create one, any other says where it looked and exits 1."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from openalgo_gtt.cli import cli
from openalgo_gtt.cli.server import startup_lines
from openalgo_gtt.config import load_settings
from openalgo_gtt.gateway import Gateway

KEY = re.compile(r"\b[0-9a-f]{16}\.[0-9a-f]{64}\b")


def run(monkeypatch, cwd, *args, **env):
    """A command as a user types it in `cwd`: no DATABASE_URL, no API_KEY_PEPPER (the data folder
    is the test's own: tests/conftest.py `data_folder`)."""
    cwd.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": None, "API_KEY_PEPPER": None, **env},
                              catch_exceptions=False)


def test_every_command_finds_the_one_database_whatever_the_working_directory(tmp_path, data_folder, monkeypatch):
    made = run(monkeypatch, tmp_path / "server", "db", "upgrade")
    assert made.exit_code == 0, made.output
    assert str(data_folder / "openalgo_gtt.db") in made.output
    empty = run(monkeypatch, tmp_path / "elsewhere", "apikey", "list")
    assert empty.output.startswith(f"no API keys yet in the database {data_folder / 'openalgo_gtt.db'}")
    created = run(monkeypatch, tmp_path / "elsewhere", "apikey", "create", "tradingview")
    assert created.exit_code == 0, created.output
    key = KEY.search(created.output).group(0)

    listed = run(monkeypatch, tmp_path / "a third place", "apikey", "list")
    assert listed.exit_code == 0 and "tradingview" in listed.output
    # The server, started anywhere, verifies the key: same database, same pepper.
    settings = load_settings({}, tmp_path / "the server's folder", read_dotenv=False)
    gateway = Gateway.build(settings)
    try:
        assert gateway.api_keys.verify(key).name == "tradingview"
    finally:
        gateway.close()
    for folder in ("server", "elsewhere", "a third place"):
        assert not (tmp_path / folder / "data").exists()  # no store of its own anywhere
    assert (data_folder / "api_key_pepper").exists()


@pytest.mark.parametrize("command", [("apikey", "list"), ("apikey", "create", "one"), ("apikey", "revoke", "one"),
                                     ("audit",), ("webhook-url",)])
def test_a_command_that_finds_no_database_says_where_it_looked_and_makes_none(tmp_path, data_folder, monkeypatch,
                                                                              command):
    result = run(monkeypatch, tmp_path / "somewhere", *command)
    assert result.exit_code == 1
    assert str(data_folder / "openalgo_gtt.db") in result.output
    assert "python run.py db upgrade" in result.output and "OPENALGO_GTT_HOME" in result.output
    assert "Traceback" not in result.output
    assert not data_folder.exists()  # neither a database nor a pepper was made
    assert not (tmp_path / "somewhere" / "data").exists()


def test_an_empty_database_is_refused_as_a_missing_one(tmp_path, monkeypatch):
    empty = tmp_path / "empty.db"
    empty.touch()  # as a PostgreSQL database or schema with no tables looks
    result = run(monkeypatch, tmp_path, "apikey", "list", DATABASE_URL=f"sqlite:///{empty}",
                 API_KEY_PEPPER="p" * 40)
    assert result.exit_code == 1
    assert f"the database {empty} has no openalgo-gtt tables" in result.output
    assert empty.stat().st_size == 0


def test_the_data_folders_env_is_read_from_anywhere_and_notify_test_makes_no_store(tmp_path, data_folder,
                                                                                     monkeypatch):
    data_folder.mkdir(parents=True)
    (data_folder / ".env").write_text("NOTIFY_URLS=json://127.0.0.1:9/nowhere\nNOTIFY_TIMEOUT=1\n")
    result = run(monkeypatch, tmp_path / "elsewhere", "notify", "test")
    assert "1: json://127.0.0.1:9" in result.output and "NOT delivered" in result.output  # the folder's URL
    assert result.exit_code == 1
    assert sorted(p.name for p in data_folder.iterdir()) == [".env"]  # no database, no pepper


def test_database_url_still_names_the_database(tmp_path, data_folder, monkeypatch):
    chosen = tmp_path / "mine" / "gtt.db"
    data_folder.mkdir(parents=True)
    (data_folder / ".env").write_text(f"DATABASE_URL=sqlite:///{chosen}\n")
    assert run(monkeypatch, tmp_path / "anywhere", "db", "upgrade").exit_code == 0
    assert chosen.exists() and not (data_folder / "openalgo_gtt.db").exists()
    assert run(monkeypatch, tmp_path / "another", "apikey", "list").exit_code == 0


def test_an_earlier_versions_database_in_the_working_directory_is_never_left_behind(tmp_path, data_folder,
                                                                                      monkeypatch):
    earlier = tmp_path / "repo" / "data" / "openalgo_gtt.db"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"")
    result = run(monkeypatch, tmp_path / "repo", "db", "upgrade")
    assert result.exit_code == 2
    assert str(earlier) in result.output and str(data_folder) in result.output and "mv " in result.output
    assert not (data_folder / "openalgo_gtt.db").exists()


def test_openalgo_gtt_home_moves_the_data_folder_and_the_server_says_where_it_is(tmp_path, monkeypatch):
    moved = tmp_path / "moved-home"
    settings = load_settings({"OPENALGO_GTT_HOME": str(moved)}, tmp_path / "cwd", read_dotenv=False)
    assert settings.database_url == f"sqlite:///{moved / 'openalgo_gtt.db'}"
    lines = startup_lines(settings)
    assert any(line.startswith(f"data folder: {moved} ") for line in lines)
    assert f"database: {moved / 'openalgo_gtt.db'}" in lines
