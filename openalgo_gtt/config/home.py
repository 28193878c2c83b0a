"""The data folder: where the default database, its pepper and the `.env` live, the same for every
command whatever its working directory (so `apikey create` run from anywhere writes to the
database the server reads).

It is the per-user data folder of the platform (platformdirs: ~/.local/share/openalgo-gtt on
Linux, ~/Library/Application Support/openalgo-gtt on macOS, %LOCALAPPDATA%\\openalgo-gtt on
Windows); OPENALGO_GTT_HOME, from the process environment, moves it. DATABASE_URL, when set,
still names the database.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import platformdirs

APP_NAME = "openalgo-gtt"
HOME_VARIABLE = "OPENALGO_GTT_HOME"
DATABASE_FILE = "openalgo_gtt.db"
# Where an earlier version kept the default database: `data/` of the working directory.
EARLIER_DATA_DIR = "data"


def platform_home() -> Path:
    """The platform's per-user data folder for the gateway."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def data_home(environ: Mapping[str, str], cwd: Path) -> Path:
    """The data folder: OPENALGO_GTT_HOME (a relative one is the working directory's), else the
    platform's per-user data folder. Absolute, so every message names it in full."""
    raw = (environ.get(HOME_VARIABLE) or "").strip()
    if not raw:
        return platform_home()
    path = Path(os.path.expanduser(raw))
    return path if path.is_absolute() else cwd / path


def default_database(home: Path) -> Path:
    return home / DATABASE_FILE


def earlier_database(cwd: Path) -> Path:
    """The database an earlier version made by default, in `data/` of the working directory."""
    return cwd / EARLIER_DATA_DIR / DATABASE_FILE
