"""Checks both entry points (the command line and wsgi.py) run before a process does anything
with the database's API keys."""
from __future__ import annotations

import sys

import click


def check_pepper_or_exit(gateway, *, server: bool, unproven_ok: bool = False) -> None:
    """Stop, with one clear message, when this process's API key pepper is not the one the
    database's keys were made with (services/apikeys.py: the pepper check). The server records
    the check on a database that has none; the command line does so only on a database without
    keys (nothing else proves its pepper is the server's). `unproven_ok`: a command that makes
    nothing the server must verify goes on when there is no check to compare with yet."""
    from openalgo_gtt.services.apikeys import PepperMismatch, PepperUnproven

    settings = gateway.settings
    try:
        gateway.api_keys.check_pepper(authoritative=server)
    except PepperUnproven as exc:
        if unproven_ok:
            return
        click.echo(f"error: {exc}; start the server once (python run.py) so it records its pepper, then run "
                   f"this again (this command's pepper comes from {settings.api_key_pepper_source})", err=True)
        sys.exit(2)
    except PepperMismatch as exc:
        outcome = "refusing to start" if server else "nothing was done"
        click.echo(f"error: {exc} ({outcome}). This process's pepper comes from {settings.api_key_pepper_source}. "
                   "Set API_KEY_PEPPER to the pepper the server was started with; without it a SQLite database's "
                   "pepper is the api_key_pepper file beside the database file (see docs/deployment.md, The "
                   "pepper).", err=True)
        sys.exit(2)
