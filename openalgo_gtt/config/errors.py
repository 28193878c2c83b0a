"""The one error configuration raises."""


class ConfigError(Exception):
    """A configuration value is missing or malformed. str(error) is the one line to show."""


class NoDatabase(ConfigError):
    """A command that works on the gateway's database found none where it looked (it never makes
    a new, empty one: only serving and `db upgrade` do). str(error) says where and what to do."""
