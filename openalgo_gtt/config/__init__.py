"""One Settings object, read once at start.

Sources, highest priority first: the process environment, then a `.env` file in the working
directory, then the `.env` in the data folder (home.py: the per-user data folder, or
OPENALGO_GTT_HOME), which also holds the default database and its pepper, so every command finds
them whatever its working directory. The Upstox access token is the exception the seed engine
established: a `keys.json` (`{"access_token": "..."}`) in the working directory, else in the data
folder, beats the environment; Kite's is `{"kite_access_token": "..."}` in the same file, which
beats KITE_ACCESS_TOKEN.

A bad value raises `ConfigError` with one line naming the variable; the command line prints that
line and exits, never a traceback.

The package, one job a module:
    settings.py   the Settings dataclass and its defaults
    loading.py    load_settings(): every variable read, checked and put in the Settings
    values.py     the parsers of one raw value (a port, seconds, a percentage, a URL...)
    security.py   the security settings' parsers and defaults (re-exported by services/abuse.py)
    sources.py    where raw values come from: the environment, .env, keys.json
    home.py       the data folder: where the default database, its pepper and .env live
    pepper.py     the API key pepper when API_KEY_PEPPER is not set: its file, found or generated
    errors.py     ConfigError, and NoDatabase (a command found no database where it looked)
"""
from openalgo_gtt.config.errors import ConfigError, NoDatabase
from openalgo_gtt.config.loading import CREATE, EXISTING, NONE, load_settings
from openalgo_gtt.config.settings import Settings

__all__ = ["CREATE", "EXISTING", "NONE", "ConfigError", "NoDatabase", "Settings", "load_settings"]
