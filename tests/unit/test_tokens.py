"""Token expiry arithmetic, the pepper-derived secrets and the tolerant parsing of Upstox's login shapes."""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

import pytest
from cryptography.fernet import InvalidToken

from openalgo_gtt.brokers.errors import TokenRejected
from openalgo_gtt.domain.clock import IST
from openalgo_gtt.brokers.upstox_login import _moment
from openalgo_gtt.cli.login import _code_and_state, stdin_prompt
from openalgo_gtt.domain.login import notifier_secret, token_cipher
from openalgo_gtt.services.tokens import (
    EXPIRED_MESSAGE,
    NoToken,
    TokenExpired,
    next_expiry,
)

PEPPER = "unit-pepper-" + "y" * 32


def ist(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=IST)


@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (ist(2026, 3, 2, 2, 0), ist(2026, 3, 2, 3, 30)),  # before 03:30: the same day
        (ist(2026, 3, 2, 10, 0), ist(2026, 3, 3, 3, 30)),  # after: the next day
        (ist(2026, 3, 2, 3, 30), ist(2026, 3, 3, 3, 30)),  # exactly 03:30: already the next one
        (ist(2026, 3, 2, 3, 29, 59), ist(2026, 3, 2, 3, 30)),
        (ist(2026, 12, 31, 23, 59), ist(2027, 1, 1, 3, 30)),
    ],
)
def test_a_token_expires_at_the_next_0330_ist(issued, expires):
    assert next_expiry(issued) == expires
    assert next_expiry(issued).tzinfo == timezone.utc


def test_naive_times_are_utc_as_stored():
    assert next_expiry(datetime(2026, 3, 2, 4, 30)) == ist(2026, 3, 3, 3, 30)  # 10:00 IST


def test_the_cipher_and_the_notifier_secret_derive_from_the_pepper():
    sealed = token_cipher(PEPPER).encrypt(b"tok")
    assert token_cipher(PEPPER).decrypt(sealed) == b"tok"
    with pytest.raises(InvalidToken):
        token_cipher(PEPPER + "x").decrypt(sealed)
    secret = notifier_secret(PEPPER)
    assert len(secret) == 32 and secret == notifier_secret(PEPPER) != notifier_secret(PEPPER + "x")
    assert secret not in PEPPER


def test_local_token_errors_are_token_rejections_that_reached_nothing():
    expired = TokenExpired(ist(2026, 3, 3, 3, 30))
    assert isinstance(expired, TokenRejected) and isinstance(NoToken(), TokenRejected)
    assert expired.message == EXPIRED_MESSAGE and not expired.may_have_reached and expired.http_status is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1731448800000", datetime(2024, 11, 12, 22, 0, tzinfo=timezone.utc)),  # epoch ms, as documented
        (1731448800000, datetime(2024, 11, 12, 22, 0, tzinfo=timezone.utc)),
        (1731448800, datetime(2024, 11, 12, 22, 0, tzinfo=timezone.utc)),  # seconds
        ("2024-11-13T03:30:00+05:30", datetime(2024, 11, 12, 22, 0, tzinfo=timezone.utc)),
        ("2024-11-12T22:00:00Z", datetime(2024, 11, 12, 22, 0, tzinfo=timezone.utc)),
        ("soon", None), ("", None), (None, None), (True, None),
    ],
)
def test_upstox_instants_are_read_tolerantly(value, expected):
    assert _moment(value) == expected


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("http://127.0.0.1:5000/upstox/callback?code=abc&state=xyz", ("abc", "xyz")),
        ("  https://host/cb?state=s1&code=c1  ", ("c1", "s1")),
        ("?code=abc", ("abc", None)),
        ("code=abc&state=q", ("abc", "q")),
        ("abc", ("abc", None)),  # a bare code
        ("http://127.0.0.1:5000/upstox/callback", (None, None)),
        ("", (None, None)),
    ],
)
def test_a_pasted_redirect_address_gives_the_code_and_state(pasted, expected):
    assert _code_and_state(pasted) == expected


def test_the_terminal_prompt_reads_one_line_from_the_descriptor(monkeypatch, capsys):
    read_end, write_end = os.pipe()
    os.write(write_end, b"  http://127.0.0.1:5000/upstox/callback?code=c&state=s  \n")
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        monkeypatch.setattr(sys, "stdin", pipe)
        assert stdin_prompt("paste it") == "http://127.0.0.1:5000/upstox/callback?code=c&state=s"
        with pytest.raises(EOFError):
            stdin_prompt("again")
    assert capsys.readouterr().out.startswith("paste it: ")
