"""`python run.py notify test`: a test message to every NOTIFY_URLS URL."""
from __future__ import annotations

import sys

import click

from openalgo_gtt.cli.bootstrap import settings_or_exit
from openalgo_gtt.config import NONE


@click.group()
def notify() -> None:
    """Notifications (NOTIFY_URLS, through Apprise)."""


@notify.command("test")
def notify_test() -> None:
    """Send a test message to every NOTIFY_URLS URL; print, per URL (masked), whether it was delivered."""
    from openalgo_gtt.services.notifications import send_test

    settings = settings_or_exit(NONE)  # sends to the URLs only: no database, none made
    if not settings.notify_urls:
        click.echo("NOTIFY_URLS is empty: notifications are off", err=True)
        sys.exit(1)
    failed = 0
    for label, outcome in send_test(settings.notify_urls, settings.notify_timeout):
        if outcome.delivered:
            click.echo(f"{label}  delivered")
        else:
            failed += 1
            click.echo(f"{label}  NOT delivered: {outcome.error}")
    sys.exit(1 if failed else 0)
