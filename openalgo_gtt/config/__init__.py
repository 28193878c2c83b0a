"""One Settings object, read once at start.

Sources, highest priority first: the process environment, then a `.env` file in the working
directory. The Upstox access token is the exception the seed engine established: a `keys.json`
(`{"access_token": "..."}`) in the working directory beats the environment; Kite's is
`{"kite_access_token": "..."}` in the same file, which beats KITE_ACCESS_TOKEN.

A bad value raises `ConfigError` with one line naming the variable; the command line prints that
line and exits, never a traceback.

The package, one job a module:
    settings.py   the Settings dataclass and its defaults
    loading.py    load_settings(): every variable read, checked and put in the Settings
    values.py     the parsers of one raw value (a port, seconds, a percentage, a URL...)
    security.py   the security settings' parsers and defaults (re-exported by services/abuse.py)
    sources.py    where raw values come from: the environment, .env, keys.json
    pepper.py     the API key pepper when API_KEY_PEPPER is not set: its file, found or generated
    errors.py     ConfigError
"""
from openalgo_gtt.config.errors import ConfigError
from openalgo_gtt.config.loading import load_settings
from openalgo_gtt.config.settings import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
