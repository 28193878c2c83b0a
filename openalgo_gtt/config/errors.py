"""The one error configuration raises."""


class ConfigError(Exception):
    """A configuration value is missing or malformed. str(error) is the one line to show."""
