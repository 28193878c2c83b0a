"""Broker errors, one class per thing the caller must do about them.

Callers decide by class (and by `may_have_reached`), never by parsing a message:

    BrokerError
      TokenRejected      401 / UDAPI100050: get a new access token; retrying will not help.
      InputRejected      other 4xx: the broker refused this request; `code`/`message` say why.
      RateLimited        429: slow down; nothing was done.
        PacingTimeout    our own pacer could not find room in time; nothing was sent.
      BrokerFailure      5xx: the broker broke while handling it.
      BrokerTimeout      connect or read timeout.
      BrokerUnreachable  no usable answer: connection refused, reset or dropped.
      UnreadableAnswer   an answer came but cannot be trusted: HTML, empty, bad JSON, fields missing.

`may_have_reached` answers "could the broker have done this write?". It is True when the
outcome is ambiguous (the request was sent and the answer was lost or garbled) and False when
nothing can have been done (refused before sending, 4xx, 429). Reads never change anything, so
it is False for them. The client never re-sends a write: whoever sees True must find out what
the broker actually holds before trying again.
"""
from __future__ import annotations


class BrokerError(Exception):
    """Base of every broker error."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        may_have_reached: bool,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # the broker's error code, e.g. "UDAPI1130", when it gave one
        self.http_status = http_status  # None when no HTTP answer came back
        self.may_have_reached = may_have_reached
        self.broker: str | None = None  # which broker, as answers name it ("Upstox", "Kite"); set by the transport

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, code={self.code!r}, "
            f"http_status={self.http_status!r}, may_have_reached={self.may_have_reached!r})"
        )


class TokenRejected(BrokerError):
    """The access token is invalid or expired (Upstox expires every token at 03:30 IST)."""


class InputRejected(BrokerError):
    """The broker refused the request as given; `code` and `message` are the broker's own."""


class RateLimited(BrokerError):
    """Too many calls; the broker (429) or our pacer refused before doing anything."""


class PacingTimeout(RateLimited):
    """The order pacer found no room within the allowed wait, so the call was never sent."""


class BrokerFailure(BrokerError):
    """The broker answered with a server error (5xx)."""


class BrokerTimeout(BrokerError):
    """No complete answer within the timeout (connect, read, or the whole body)."""


class BrokerUnreachable(BrokerError):
    """The connection failed: refused, reset, or closed without a complete answer."""


class UnreadableAnswer(BrokerError):
    """An answer arrived but is not the documented shape (HTML, empty, bad JSON, missing fields)."""
