"""Where raw values come from: the process environment over a `.env` file, and keys.json for the
broker access tokens."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from openalgo_gtt.config.errors import ConfigError


def variables(environ: Mapping[str, str], cwd: Path, *, read_dotenv: bool) -> dict[str, str]:
    """The variables of a `.env` in `cwd` (when `read_dotenv`), overridden by `environ`."""
    source: dict[str, str] = {}
    dotenv_file = cwd / ".env"
    if read_dotenv and dotenv_file.exists():
        source.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
    source.update(environ)  # the environment wins over .env
    return source


def access_token(cwd: Path, source: Mapping[str, str], key: str = "access_token",
                 variable: str = "ACCESS_TOKEN") -> tuple[str | None, str | None]:
    """keys.json beats the environment, as in the seed engine (Upstox's `access_token`, Kite's
    `kite_access_token`)."""
    keys_file = cwd / "keys.json"
    if keys_file.exists():
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
