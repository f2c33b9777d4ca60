"""Quotas and rates on allow grants: `--limit 100/day`, `--rate 10/min`.

A quota is a number of calls per fixed window of time (a second, minute,
hour, day or week, aligned on UTC: days start at 00:00 UTC, weeks on
Monday). It is counted per caller principal (`user:NAME`, or
`client:ID` for a service token) and per grant; the counting is SQL state
(store/usage.py) moved in the admission's own transaction. This module is
the pure part: parsing, windows, the text the model reads, and which
grants a call that `decide` allowed may be counted against.

Several allow grants can hold for one call. Each allow grant is its own
allowance: on each side of the decision, an unlimited allow that holds
means nothing is counted there; otherwise the limited allows that hold are
tried lowest id first and the first with room left is charged (only it).
A side whose every limited allow is used up refuses the call. Quotas only
ever turn an allow into a refusal: a call `decide` denies is never counted
and never allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from mcp_acl.policy.conditions import ConditionError
from mcp_acl.policy.model import Decision, Grant, Identity, PolicyError

# unit → (its length in seconds, the word the model reads, the short form stored)
_UNITS = {
    "second": (1, "second", "sec"),
    "minute": (60, "minute", "min"),
    "hour": (3600, "hour", "hour"),
    "day": (86400, "day", "day"),
    "week": (604800, "week", "week"),
}
# The longest window any quota has, in seconds.
LONGEST_PERIOD = max(seconds for seconds, _, _ in _UNITS.values())
_ALIASES = {
    "s": "second", "sec": "second", "secs": "second", "second": "second", "seconds": "second",
    "m": "minute", "min": "minute", "mins": "minute", "minute": "minute", "minutes": "minute",
    "h": "hour", "hr": "hour", "hour": "hour", "hours": "hour",
    "d": "day", "day": "day", "days": "day",
    "w": "week", "wk": "week", "week": "week", "weeks": "week",
}
_SYNTAX = re.compile(r"\s*(\d{1,10})\s*/\s*([a-z]+)\s*", re.IGNORECASE)
MAX_CALLS = 1_000_000_000
# 1970-01-01 was a Thursday: weeks start 4 days later, on Monday.
_WEEK_OFFSET = 4 * 86400
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Quota:
    """At most `calls` calls per fixed window of `unit`."""

    calls: int
    unit: str  # a key of _UNITS

    @property
    def period(self) -> int:
        """The window's length in seconds."""
        return _UNITS[self.unit][0]

    def __str__(self) -> str:
        return f"{self.calls}/{_UNITS[self.unit][2]}"

    def phrase(self) -> str:
        """`100 calls a day`, `1 call an hour`."""
        word = _UNITS[self.unit][1]
        article = "an" if word == "hour" else "a"
        return f"{self.calls} call{'' if self.calls == 1 else 's'} {article} {word}"

    def window(self, now: datetime) -> tuple[int, datetime]:
        """The window `now` falls in: its start (seconds since the epoch) and when it ends (the reset)."""
        offset = _WEEK_OFFSET if self.unit == "week" else 0
        seconds = int((now - _EPOCH).total_seconds())
        start = offset + ((seconds - offset) // self.period) * self.period
        return start, _EPOCH + timedelta(seconds=start + self.period)


def parse_quota(text: str) -> Quota:
    """`100/day` → Quota(100, "day"); raise PolicyError saying what is wrong."""
    found = _SYNTAX.fullmatch(text) if isinstance(text, str) else None
    unit = _ALIASES.get(found.group(2).lower()) if found else None
    if found is None or unit is None:
        raise PolicyError(f"a quota is CALLS/UNIT such as 100/day or 10/min (units: sec, min, hour, day, week), not {text!r}")
    calls = int(found.group(1))
    if not 1 <= calls <= MAX_CALLS:
        raise PolicyError(f"a quota allows from 1 to {MAX_CALLS} calls per window, not {calls}")
    return Quota(calls, unit)


def grant_quotas(grant: Grant) -> tuple[tuple[str, Quota], ...]:
    """The grant's quotas as (kind, quota): kind `limit` and/or `rate`. Raises PolicyError."""
    found = []
    for kind in ("limit", "rate"):
        text = getattr(grant, kind, None)
        if text is not None:
            if grant.effect.value != "allow":
                raise PolicyError(f"only an allow grant can have a {kind}")
            found.append((kind, parse_quota(text)))
    return tuple(found)


def quota_phrase(grant: Grant) -> str | None:
    """What the model reads about a grant's quotas: `at most 100 calls a day and 10 calls a minute`."""
    try:
        quotas = grant_quotas(grant)
    except PolicyError:
        return None
    if not quotas:
        return None
    return "at most " + " and ".join(q.phrase() for _, q in quotas)


def counted_principal(identity: Identity) -> str:
    """Who a call is counted for: `user:NAME`, or `client:ID` for a service token."""
    return f"user:{identity.subject}" if identity.subject is not None else f"client:{identity.client_id}"


@dataclass(frozen=True, slots=True)
class Allowance:
    """One side of an allowed call: the unlimited allow that holds (`free`), else its limited ones in the order tried."""

    who: str
    grants: tuple[tuple[int, tuple[tuple[str, Quota], ...]], ...]  # (grant id, its quotas)
    free: int | None = None


def allowances(policy: Any, identity: Identity, target: str, args: dict | None, now: datetime, decision: Decision) -> tuple[Allowance, ...]:
    """For a call `decide` allowed: one Allowance per side, or () when nothing is counted
    and the deciding grant is the one `decide` named (the common case: no quotas).
    """
    if not decision.allowed or not policy.limited_grants:
        return ()
    caller = policy.caller(identity)
    first = decision.grant
    if len(caller.sides) == 1 and first is not None and getattr(first, "limit", None) is None and getattr(first, "rate", None) is None:
        return ()  # the deciding grant is unlimited, and an unlimited allow is never counted
    context = None
    found: list[Allowance] = []
    for side in caller.sides:
        limited = []
        free = None
        for cg in side.matching(target, now):
            if cg.deny:
                continue
            if cg.grant.approval_by is not None and cg.id != decision.grant_id:
                # A grant that needs approval lets nothing through unasked: it is not this call's
                # allowance (decide chose an allow that needs none), so it neither frees nor counts it.
                continue
            if cg.condition is not None:
                if context is None:
                    context = {"args": args if args is not None else {}, "user": caller.user, "client": caller.client, "now": now}
                try:
                    if not cg.condition.holds(context):
                        continue
                except ConditionError:
                    continue
            if not cg.quotas:
                free = cg.id
                break
            limited.append((cg.id, cg.quotas))
        found.append(Allowance(side.who, () if free is not None else tuple(limited), free))
    if all(a.free is not None for a in found) and found[0].free == decision.grant_id:
        return ()
    return tuple(found)


def quota_texts(effect: Any, limit: str | None, rate: str | None) -> tuple[str | None, str | None]:
    """Validate a grant's limit and rate and return them written the one way they are stored (`100/day`).

    Raises PolicyError for a malformed quota, or a quota on a deny.
    """
    found = []
    for kind, text in (("limit", limit), ("rate", rate)):
        if text is None:
            found.append(None)
            continue
        if getattr(effect, "value", effect) != "allow":
            raise PolicyError(f"a deny cannot have a {kind}: quotas count allowed calls")
        found.append(str(parse_quota(text)))
    return found[0], found[1]
