"""How a caller's `expires_at` text is read (domain/expiry.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from openalgo_gtt.domain.expiry import parse_expiry


@pytest.mark.parametrize("text", ["2026-12-31", "20261231", " 2026-12-31 "])
def test_a_date_alone_is_the_end_of_that_day_in_ist_however_it_is_spelt(text):
    assert parse_expiry(text) == datetime(2026, 12, 31, 18, 29, 59, tzinfo=timezone.utc)  # 23:59:59 IST


def test_a_date_time_without_a_zone_is_ist_and_one_with_a_zone_keeps_it():
    assert parse_expiry("2026-12-31 15:00") == datetime(2026, 12, 31, 9, 30, tzinfo=timezone.utc)
    assert parse_expiry("2026-12-31T09:30:00Z") == datetime(2026, 12, 31, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["31-12-2026", "tomorrow", "2026-13-01", ""])
def test_anything_else_is_refused_with_the_rule(text):
    with pytest.raises(ValueError, match="ISO date"):
        parse_expiry(text)
