"""The lines `python run.py` prints on start: one format (logging's), and a webhook line that
says what to do instead of reading like a URL never filled in."""
from __future__ import annotations

import dataclasses
import logging

from openalgo_gtt.cli.bootstrap import startup_log
from openalgo_gtt.cli.server import startup_lines


def test_on_upstox_the_webhook_line_names_the_url_and_how_to_print_it(settings):
    lines = startup_lines(dataclasses.replace(settings, broker="upstox", host="127.0.0.1", port=5000))
    (webhook,) = [line for line in lines if line.startswith("Upstox GTT webhook")]
    assert "http://127.0.0.1:5000/upstox/postback/" in webhook
    assert "`python run.py webhook-url`" in webhook and "postback URL" in webhook
    assert not webhook.endswith("webhook URL: python run.py webhook-url")


def test_on_the_sandbox_the_webhook_is_said_to_be_unused(settings):
    lines = startup_lines(dataclasses.replace(settings, broker="sandbox"))
    assert any(line == "Upstox GTT webhook: not used with the sandbox broker" for line in lines)
    assert any("foreground" in line and "second terminal" in line for line in lines)


def test_start_up_lines_go_through_logging_whatever_the_level():
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)
    try:
        assert startup_log.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(before)
