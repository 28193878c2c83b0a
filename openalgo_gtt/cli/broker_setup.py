"""Connecting the broker: `login` for today's access token (the terminal flow is cli/login.py)
and `webhook-url`, the postback URL to set on the Upstox app."""
from __future__ import annotations

import sys

import click

from openalgo_gtt.cli.bootstrap import build_gateway, friendly_errors, settings_or_exit, upgrade_database
from openalgo_gtt.startup import check_pepper_or_exit


@click.command("webhook-url")
@friendly_errors
def webhook_url() -> None:
    """Print the URL to set as the Upstox app's postback URL (GTT updates)."""
    settings = settings_or_exit()
    upgrade_database(settings)
    gateway = build_gateway(settings)
    check_pepper_or_exit(gateway, server=False, unproven_ok=True)  # the secret derives from the pepper
    click.echo(f"http://{settings.host}:{settings.port}/upstox/postback/{gateway.webhook_secret}")
    click.echo("(use your public https address in place of the host and port when behind ngrok or a domain)", err=True)


# The function is not called `login`: in the cli package that name is the module cli/login.py.
@click.command("login")
@click.option("--app", "via_app", is_flag=True,
              help="Approve in the Upstox app instead of a browser; the running server's notifier receives the token.")
@click.option("--no-listen", is_flag=True, help="Do not listen on the redirect URI's port; paste the address instead.")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for the login.")
@click.option("--notifier-url", is_flag=True, help="Only print the notifier URL to set on the Upstox app.")
@friendly_errors
def login_command(via_app: bool, no_listen: bool, timeout: int, notifier_url: bool) -> None:
    """Log in to the configured broker for today's access token and store it encrypted (Upstox's
    ends at 03:30 IST, Kite's at 06:00 IST)."""
    from openalgo_gtt.cli.login import run_login, stdin_prompt
    from openalgo_gtt.services.upstox_login import LoginError

    settings = settings_or_exit()
    upgrade_database(settings)
    gateway = build_gateway(settings)
    check_pepper_or_exit(gateway, server=False, unproven_ok=True)  # the token is encrypted under the pepper
    if settings.broker == "kite":
        if via_app or notifier_url:
            click.echo("error: --app and --notifier-url are Upstox's; Kite logs in through its login page", err=True)
            sys.exit(2)
        try:
            run_login(gateway, echo=click.echo, prompt=stdin_prompt, listen=not no_listen, timeout=timeout,
                      service=gateway.kite_login)
        except LoginError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        return
    if notifier_url:
        click.echo(f"http://{settings.host}:{settings.port}{gateway.upstox_login.notifier_path}")
        click.echo("(use your public https address in place of the host and port)", err=True)
        return
    try:
        run_login(gateway, echo=click.echo, prompt=stdin_prompt, via_app=via_app, listen=not no_listen,
                  timeout=timeout)
    except LoginError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
