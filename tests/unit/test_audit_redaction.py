"""Redaction of text kept because it could not be parsed: one function, masking before cutting."""
from __future__ import annotations

import secrets

import pytest

from openalgo_gtt.services.audit import bounded, redact_query, redact_text, unparsed


def test_every_run_of_16_or_more_hex_characters_is_masked():
    assert redact_text("id=" + "a" * 15 + " x") == "id=" + "a" * 15 + " x"
    assert redact_text("id:" + "Ab" * 8 + " x") == "id:*** x"
    key = f"{secrets.token_hex(8)}.{secrets.token_hex(32)}"
    assert redact_text(f"[{key}]") == "[***]"  # this service's key format, whole


@pytest.mark.parametrize("text,expected", [
    ('{"apikey": "k-1", "x": 1}', '{"apikey": "***", "x": 1}'),
    ('{"Api_Key":"k-1"}', '{"Api_Key":"***"}'),
    ("token=t-1&page=2", "token=***&page=2"),
    ("X-API-KEY: k-1\n", "X-API-KEY: ***\n"),
    ("{'password': 'pw-1'}", "{'password': '***'}"),
    ('{"secret": "unterminated pw-1', '{"secret": "***"'),
    ('{"refresh_token" : bare-1}', '{"refresh_token" : ***}'),
])
def test_secret_fields_are_masked_in_any_shape(text, expected):
    assert redact_text(text) == expected


def test_a_cut_never_leaves_part_of_a_secret():
    for kept in range(1, 30):
        key = secrets.token_hex(32)
        text = "n" * (4096 - kept) + key + "z" * 100
        stored = unparsed(text.encode())
        assert stored["truncated"] is True and stored["original_bytes"] == len(text)
        assert key[:kept] not in stored["unparsed_body"] or kept < 3


def test_a_multi_byte_body_is_cut_on_a_character_boundary_within_4_kib():
    stored = unparsed(("é" * 5000).encode())
    assert len(stored["unparsed_body"].encode()) <= 4096 and "\ufffd" not in stored["unparsed_body"]


def test_short_text_is_kept_whole_without_a_marker():
    assert unparsed(b'{"apikey": "x"') == {"unparsed_body": '{"apikey": "***"'}


def test_query_parameters_are_masked_by_name_and_by_pattern():
    assert redact_query({"code": "c", "STATE": "s", "page": "1", "ref": "f" * 20}) == {
        "code": "***", "STATE": "***", "page": "1", "ref": "***"}


def test_bounded_keeps_an_authenticated_body_and_cuts_an_anonymous_one():
    body = {"note": "x" * 5000}
    assert bounded(body, authenticated=True) is body
    cut = bounded(body, authenticated=False)
    assert cut["truncated"] is True and len(cut["unparsed_body"].encode()) <= 4096
    assert bounded(cut, authenticated=False) is cut  # already bounded: unchanged
    assert bounded({"note": "short"}, authenticated=False) == {"note": "short"}


def test_a_decimal_beyond_a_floats_range_is_written_as_valid_json():
    import json
    from decimal import Decimal

    from openalgo_gtt.domain.encoding import dumps

    text = dumps({"quantity": Decimal("1e999999999"), "tiny": Decimal("-1e999999999"), "price": Decimal("9.5"),
                  "nan": Decimal("NaN")})
    def refuse(name):
        raise AssertionError(f"{name} is not JSON")

    value = json.loads(text, parse_constant=refuse)  # Infinity, -Infinity or NaN would fail here
    assert value == {"quantity": "1E+999999999", "tiny": "-1E+999999999", "price": 9.5, "nan": "NaN"}
