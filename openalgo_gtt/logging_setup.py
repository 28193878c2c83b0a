"""Logging for every entry point: the command line (cli/) and the WSGI application (wsgi.py).

Its own module so the WSGI application does not import the command line to get it.
"""
from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Alembic announces every plugin at INFO; only its warnings matter to someone starting a server.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
