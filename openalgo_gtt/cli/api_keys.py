"""`python run.py apikey create|list|revoke`: the gateway's API keys."""
from __future__ import annotations

import click

from openalgo_gtt.cli.bootstrap import (
    build_gateway, friendly_errors, settings_or_exit, shown_database, upgrade_database,
)
from openalgo_gtt.startup import check_pepper_or_exit


@click.group()
def apikey() -> None:
    """Create, list and revoke API keys."""


@apikey.command("create")
@click.argument("name")
@friendly_errors
def apikey_create(name: str) -> None:
    """Create a key; it is printed once, alone on the last line."""
    settings = settings_or_exit()
    upgrade_database(settings)
    gateway = build_gateway(settings)
    check_pepper_or_exit(gateway, server=False)  # never print a key the server cannot verify
    key = gateway.api_keys.create(name)
    click.echo(f"API key {name!r} created. It is shown only this once; store it safely:")
    click.echo(key)


@apikey.command("list")
@friendly_errors
def apikey_list() -> None:
    """Names, creation and last use (never the keys)."""
    from openalgo_gtt.domain.clock import ist_text

    settings = settings_or_exit()
    upgrade_database(settings)
    keys = build_gateway(settings).api_keys.list()
    if not keys:  # naming the database: "no keys" in another one than the server's is a question of where
        click.echo(f"no API keys yet in the database {shown_database(settings)}: python run.py apikey create NAME")
        return
    click.echo(f"{'NAME':<24} {'CREATED (IST)':<20} {'LAST USED (IST)':<20} STATE")
    for key in keys:
        state = f"revoked {ist_text(key.revoked_at)}" if key.revoked_at else "active"
        if key.legacy and not key.revoked_at:
            state += " (legacy format: replace it with a new key)"
        click.echo(f"{key.name:<24} {ist_text(key.created_at):<20} {ist_text(key.last_used_at) or '-':<20} {state}")


@apikey.command("revoke")
@click.argument("name")
@friendly_errors
def apikey_revoke(name: str) -> None:
    """Revoke a key; it stops working at once."""
    settings = settings_or_exit()
    upgrade_database(settings)
    build_gateway(settings).api_keys.revoke(name)
    click.echo(f"API key {name!r} revoked")
