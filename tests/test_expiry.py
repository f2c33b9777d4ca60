"""Expiry parsing: durations, ISO 8601 times, and times already past."""

from __future__ import annotations

import doctest
from datetime import date, datetime, timedelta, timezone

import pytest

import mcp_acl.expiry
from mcp_acl.expiry import ExpiryError, parse_expiry, parse_instant

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_docstring_examples_hold():
    result = doctest.testmod(mcp_acl.expiry)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("text", "after"),
    [("45s", timedelta(seconds=45)), ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)),
     ("7d", timedelta(days=7)), ("1w", timedelta(weeks=1)), (" 2H ", timedelta(hours=2))],
)
def test_duration_counts_from_now(text, after):
    assert parse_expiry(text, NOW) == NOW + after


def test_iso_time_without_offset_is_utc():
    assert parse_expiry("2026-02-01T08:30", NOW) == datetime(2026, 2, 1, 8, 30, tzinfo=timezone.utc)


def test_iso_time_with_offset_is_converted_to_utc():
    assert parse_expiry("2026-02-01T08:30:00-05:00", NOW) == datetime(2026, 2, 1, 13, 30, tzinfo=timezone.utc)


def test_iso_time_with_z_suffix_is_utc():
    assert parse_expiry("2026-02-01T08:30:00Z", NOW) == datetime(2026, 2, 1, 8, 30, tzinfo=timezone.utc)


def test_expiry_in_the_past_is_an_error():
    with pytest.raises(ExpiryError, match="in the past"):
        parse_expiry("2026-01-01T11:59", NOW)


def test_expiry_equal_to_now_is_an_error():
    with pytest.raises(ExpiryError, match="in the past"):
        parse_expiry("2026-01-01T12:00Z", NOW)


def test_zero_duration_is_an_error():
    with pytest.raises(ExpiryError, match="zero"):
        parse_expiry("0h", NOW)


@pytest.mark.parametrize("text", ["", "tomorrow", "2 hours", "-2h", "2y", "2026-13-01"])
def test_unreadable_expiry_is_an_error(text):
    with pytest.raises(ExpiryError, match="not a time"):
        parse_expiry(text, NOW)


def test_instant_accepts_yaml_dates_and_datetimes():
    assert parse_instant(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert parse_instant(datetime(2026, 3, 1, 5)) == datetime(2026, 3, 1, 5, tzinfo=timezone.utc)
