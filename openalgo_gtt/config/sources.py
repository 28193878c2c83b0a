"""Where raw values come from: the process environment over `.env` files (the working directory's
over the data folder's), and keys.json for the broker access tokens."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from dotenv import dotenv_values

from openalgo_gtt.config.errors import ConfigError


def variables(environ: Mapping[str, str], dotenv_dirs: Sequence[Path], *,
              read_dotenv: bool) -> tuple[dict[str, str], tuple[Path, ...]]:
    """The variables of the `.env` in each of `dotenv_dirs` (when `read_dotenv`; a later one's
    values win), overridden by `environ`; and the `.env` files read."""
    source: dict[str, str] = {}
    read: list[Path] = []
    for directory in dict.fromkeys(dotenv_dirs):  # the data folder may be the working directory
        dotenv_file = directory / ".env"
        if read_dotenv and dotenv_file.is_file():
            source.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
            read.append(dotenv_file)
    source.update(environ)  # the environment wins over .env
    return source, tuple(read)


def access_token(key_dirs: Sequence[Path], source: Mapping[str, str], key: str = "access_token",
                 variable: str = "ACCESS_TOKEN") -> tuple[str | None, str | None]:
    """keys.json beats the environment, as in the seed engine (Upstox's `access_token`, Kite's
    `kite_access_token`): the first of `key_dirs` holding a keys.json is read."""
    keys_file = next((d / "keys.json" for d in key_dirs if (d / "keys.json").exists()), None)
    if keys_file is not None:
        try:
            token = json.loads(keys_file.read_text(encoding="utf-8")).get(key)
        except (ValueError, AttributeError, OSError):
            raise ConfigError(
                'keys.json: must be a JSON object like {"access_token": "..."}'
            ) from None
        if isinstance(token, str) and token.strip():
            return token.strip(), "keys.json"
    token = (source.get(variable) or "").strip()
    return (token, "environment") if token else (None, None)
