"""Expiry times as people write them: a duration from now, or an ISO 8601 instant.

    >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> parse_expiry("2h", now).isoformat()
    '2026-01-01T02:00:00+00:00'
    >>> parse_expiry("7d", now).isoformat()
    '2026-01-08T00:00:00+00:00'
    >>> parse_expiry("2026-03-01T12:00", now).isoformat()
    '2026-03-01T12:00:00+00:00'
    >>> parse_expiry("2026-03-01T12:00+02:00", now).isoformat()
    '2026-03-01T10:00:00+00:00'
    >>> parse_expiry("2025-12-31", now)
    Traceback (most recent call last):
    ...
    mcp_acl.expiry.ExpiryError: the expiry 2025-12-31T00:00:00+00:00 is in the past (now is 2026-01-01T00:00:00+00:00)

Durations are a whole number and a unit: `s`, `m`, `h`, `d` or `w`. An ISO
time without an offset is read as UTC, never as the machine's local time, so
the same command means the same instant on every machine.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ExpiryError(ValueError):
    """Text that is neither a duration nor an ISO 8601 time, or a time already past."""


def parse_duration(text: str) -> timedelta | None:
    """`30m` → 30 minutes; None when `text` is not a duration.

    >>> parse_duration("30m")
    datetime.timedelta(seconds=1800)
    >>> parse_duration("tomorrow") is None
    True
    """
    found = _DURATION.fullmatch(text.strip().lower())
    if not found:
        return None
    amount, unit = found.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def parse_instant(value: str | datetime | date) -> datetime:
    """An ISO 8601 time (or a date, meaning its midnight) as aware UTC; no offset means UTC.

    >>> parse_instant("2026-03-01T12:00:00Z").isoformat()
    '2026-03-01T12:00:00+00:00'
    >>> parse_instant("2026-03-01").isoformat()
    '2026-03-01T00:00:00+00:00'
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ExpiryError(
                f"{value!r} is not a time: use a duration like 30m, 2h, 7d or an ISO 8601 time like 2026-03-01T12:00Z"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_expiry(text: str, now: datetime) -> datetime:
    """When a grant given `text` at `now` expires; raise ExpiryError if unreadable or past."""
    span = parse_duration(text)
    if span is not None:
        if not span:
            raise ExpiryError(f"the expiry {text!r} is zero: the grant would never apply")
        return now + span
    moment = parse_instant(text)
    if moment <= now:
        raise ExpiryError(f"the expiry {moment.isoformat()} is in the past (now is {now.isoformat()})")
    return moment
