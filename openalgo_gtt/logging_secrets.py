"""No secret reaches a log line, at any level: a filter on every handler of the root logger.

Libraries log URLs the gateway cannot reword: urllib3 logs each request line at DEBUG
(`"POST /api/webhooks/<id>/<token> HTTP/1.1" 204`) and each retry at WARNING, Apprise logs the
URL it posts to, requests' errors quote the URL. Notification URLs carry their secret in the
path (Discord, Slack, Telegram's bot token, ntfy's topic, a JSON webhook's path), so:

- every part of a configured secret (each NOTIFY_URLS URL's user, password, tokens, path
  segments and query values of 8 characters or more; the webhook and notifier secrets) is
  registered at start (`register_secrets`) and replaced wherever it appears;
- well-known shapes are masked whatever their source: this gateway's API keys (and old 64-hex
  ones), JWTs (Upstox's and Kite's access tokens), bearer tokens, Telegram bot tokens, Discord
  and Slack webhook paths, and the gateway's own secret webhook paths.

The filter rewrites the message (and a traceback's text) once, before any handler formats it.
"""
from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
MIN_SECRET_LENGTH = 8
# A host part that names a server (a dot, "localhost", an IP), with an optional port and nothing
# after it, rather than carrying a token (Telegram's, ntfy's topic, Discord's webhook id).
_SERVER_HOST = re.compile(r"(localhost|\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)(:\d+)?/?")

_PATTERNS = [
    # this gateway's API keys (<16 hex>.<64 hex>) and old ones (64 hex), any case
    (re.compile(r"(?i)\b[0-9a-f]{16}\.[0-9a-f]{64}\b|\b[0-9a-f]{64}\b"), MASK),
    (re.compile(r"\beyJ[\w-]{8,}\.[\w-]+(?:\.[\w-]*)?"), MASK),  # a JWT
    (re.compile(r"(?i)(\bbearer\s+)[\w.~+/=-]+"), r"\1" + MASK),
    (re.compile(r"(?i)(\bbot\d+):[\w-]{20,}"), r"\1:" + MASK),  # Telegram's bot token
    (re.compile(r"(/api/webhooks/)[^\s\"'?#]+"), r"\1" + MASK),  # Discord
    (re.compile(r"(?i)(/services/)[A-Z0-9]{6,}/[A-Z0-9]{6,}/[^\s\"'?#]+"), r"\1" + MASK),  # Slack
    (re.compile(r"(/upstox/(?:postback|notifier)/)[^\s\"'?#]+"), r"\1" + MASK),  # this gateway's
    # an Apprise URL written out whole (tgram://..., discord://..., json://user:pw@host/...):
    # only a server's name and port may stay
    (re.compile(r"\b((?:tgram|discord|slack|ntfys?|pover|pushover|matrixs?|mailtos?|jsons?|forms?|xmls?|"
                r"gotify|msteams|twilio|signal|whatsapp|rocket|mattermost)://)([^\s\"'<>]+)"),
     lambda m: m.group(0) if _SERVER_HOST.fullmatch(m.group(2)) else m.group(1) + MASK),
]

_lock = threading.Lock()
_secrets: list[str] = []  # longest first, so a secret that contains another is masked whole


def register_secrets(*values: str) -> None:
    """Mask these exact strings (and their URL-encoded and -decoded forms) in every log line
    from now on. Values shorter than MIN_SECRET_LENGTH are ignored."""
    found = set()
    for value in values:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            continue
        found |= {value, quote(value, safe=""), unquote(value)}
    with _lock:
        merged = set(_secrets) | {v for v in found if len(v) >= MIN_SECRET_LENGTH}
        _secrets[:] = sorted(merged, key=len, reverse=True)


def secrets_in_url(url: str) -> list[str]:
    """The parts of a notification URL that may be secret: user, password, a host that is not a
    server's name (a token or a topic), path segments and query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    host = parts.netloc.rsplit("@", 1)[-1]
    pieces = [parts.username or "", parts.password or "", parts.fragment]
    if not _SERVER_HOST.fullmatch(host):
        pieces.append(host)
        pieces.extend(re.split(r"[:]", host))
    pieces.extend(segment for segment in parts.path.split("/") if segment)
    pieces.extend(re.split(r"[&=]", parts.query))
    return [piece for piece in pieces if len(piece) >= MIN_SECRET_LENGTH]


def mask_secrets(text: str) -> str:
    with _lock:
        known = list(_secrets)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretFilter(logging.Filter):
    """Rewrites each record's message, and its traceback text, with every secret masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: let the handler report it
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


def install_secret_filter() -> None:
    """Put the filter on every handler of the root logger (a filter on a handler sees every
    record that reaches it, from any logger); once per handler."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
