"""The API key pepper: API_KEY_PEPPER's check, and, when it is not set, the pepper file (found
beside a SQLite database, or generated for a new one)."""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from openalgo_gtt.config.errors import ConfigError
from openalgo_gtt.config.home import EARLIER_DATA_DIR

# The logger's name from before config/ was a package, so a filter on it still matches.
log = logging.getLogger("openalgo_gtt.config")

MIN_PEPPER_LENGTH = 32
PEPPER_FILE_NAME = "api_key_pepper"


def pepper_value(raw: str) -> str:
    """API_KEY_PEPPER's parser: raises ValueError with a human reason."""
    if len(raw) < MIN_PEPPER_LENGTH:
        raise ValueError(f"must be at least {MIN_PEPPER_LENGTH} characters")
    return raw


def sqlite_file(database_url: str, cwd: Path) -> Path | None:
    """The database file of a SQLite URL (relative paths are the working directory's), else None."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    path = Path(url.database)
    return path if path.is_absolute() else cwd / path


def _read_pepper(path: Path) -> str:
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < MIN_PEPPER_LENGTH:
        raise ConfigError(f"{path}: the stored API key pepper is too short; delete it or set API_KEY_PEPPER")
    return value


def _generate_pepper(path: Path) -> str:
    """Generate a pepper into `path`, readable only by its owner (or read the one a process
    starting at the same moment wrote)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    # O_EXCL: two workers starting together must not write two different peppers.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_pepper(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    log.warning(
        "API_KEY_PEPPER is not set: generated one into %s (owner-only). Keep this file: "
        "without it every API key stops working.",
        path,
    )
    return value


def pepper_file_for(database_url: str, home: Path, cwd: Path) -> Path:
    """Where the generated pepper lives: beside a SQLite database file (so every command using
    that database finds it, whatever its working directory), else in the data folder `home`
    (PostgreSQL: or set API_KEY_PEPPER, see docs/deployment.md, The pepper)."""
    db_file = sqlite_file(database_url, cwd)
    return (db_file.parent if db_file is not None else home) / PEPPER_FILE_NAME


def pepper_from_file(database_url: str, home: Path, cwd: Path, *, generate: bool = True) -> tuple[str, str]:
    """(pepper, where it lives) when API_KEY_PEPPER is not set.

    A SQLite database keeps its pepper file beside it. Before that, the file was generated into
    `data/` of the server's working directory; a database whose pepper is still only there is
    read from there. A new pepper is generated only for a database that does not exist yet (and
    only when `generate`: by a command that creates the database): for an existing one, a
    missing pepper means this process cannot verify its keys, and inventing a pepper would print
    keys that cannot work."""
    path = pepper_file_for(database_url, home, cwd)
    if path.exists():
        return _read_pepper(path), f"the file {path}"
    earlier = cwd / EARLIER_DATA_DIR / PEPPER_FILE_NAME
    if earlier != path and earlier.exists():
        return _read_pepper(earlier), f"the file {earlier}"
    db_file = sqlite_file(database_url, cwd)
    if db_file is not None and db_file.exists():
        raise ConfigError(
            f"API_KEY_PEPPER is not set and there is no pepper file at {path} for the existing database "
            f"{db_file}: set API_KEY_PEPPER to the server's pepper, or put the server's {PEPPER_FILE_NAME} "
            "file beside the database"
        )
    if not generate:
        raise ConfigError(f"API_KEY_PEPPER is not set and there is no pepper file at {path}: set API_KEY_PEPPER "
                          "to the server's pepper, or start the server once (python run.py) so it makes one")
    return _generate_pepper(path), f"the file {path}"
