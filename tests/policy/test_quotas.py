"""Quota parsing, windows, the model's text, and which grants a call is counted against."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mcp_acl.policy import Effect, Grant, Identity, PolicyError, compile_policy, decide, limits
from mcp_acl.policy.compiled import ClientInfo
from mcp_acl.policy.quotas import Quota, allowances, parse_quota, quota_texts

WEDNESDAY = datetime(2026, 12, 9, 10, 30, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, calls, unit, shown", [
    ("100/day", 100, "day", "100/day"), ("10/min", 10, "minute", "10/min"), (" 3 / Hours ", 3, "hour", "3/hour"),
    ("1/s", 1, "second", "1/sec"), ("7/w", 7, "week", "7/week"),
])
def test_quotas_parse_and_are_written_one_way(text, calls, unit, shown):
    quota = parse_quota(text)
    assert (quota.calls, quota.unit, str(quota)) == (calls, unit, shown)


@pytest.mark.parametrize("text", ["100", "/day", "0/day", "-1/day", "1/fortnight", "1.5/day", "10000000000/day", ""])
def test_malformed_quotas_are_refused(text):
    with pytest.raises(PolicyError):
        parse_quota(text)


@pytest.mark.parametrize("unit, start, reset", [
    ("second", "2026-12-09 10:30:15", "2026-12-09 10:30:16"),
    ("minute", "2026-12-09 10:30:00", "2026-12-09 10:31:00"),
    ("hour", "2026-12-09 10:00:00", "2026-12-09 11:00:00"),
    ("day", "2026-12-09 00:00:00", "2026-12-10 00:00:00"),
    ("week", "2026-12-07 00:00:00", "2026-12-14 00:00:00"),  # Monday to Monday
])
def test_windows_are_fixed_and_aligned_on_utc(unit, start, reset):
    began, resets = Quota(1, unit).window(WEDNESDAY)
    assert datetime.fromtimestamp(began, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") == start
    assert resets.strftime("%Y-%m-%d %H:%M:%S") == reset


def test_a_deny_cannot_carry_a_quota():
    with pytest.raises(PolicyError, match="a deny cannot have a rate"):
        quota_texts(Effect.DENY, None, "1/min")
    with pytest.raises(PolicyError, match="only an allow grant"):
        compile_policy(1, [Grant(1, "user:a", Effect.DENY, "tool:x", limit="1/day")])


def test_the_model_reads_the_quota_with_the_note():
    policy = compile_policy(1, [Grant(1, "user:a", Effect.ALLOW, "tool:x", note="Reads files.", limit="100/day", rate="1/hour")])
    assert limits(policy, Identity("a"), "tool:x", WEDNESDAY) == ["Reads files; at most 100 calls a day and 1 call an hour"]


def _plan(grants, identity, target="tool:x", restricted=()):
    policy = compile_policy(1, grants, {}, [ClientInfo(c, True) for c in restricted])
    return allowances(policy, identity, target, {}, WEDNESDAY, decide(policy, identity, target, {}, WEDNESDAY))


def test_an_unlimited_allow_that_holds_means_nothing_is_counted():
    limited = Grant(1, "user:a", Effect.ALLOW, "tool:x", limit="1/day")
    assert _plan([limited, Grant(2, "user:a", Effect.ALLOW, "tool:*")], Identity("a"))[0].free == 2
    assert _plan([Grant(1, "user:a", Effect.ALLOW, "tool:x")], Identity("a")) == ()
    assert _plan([limited, Grant(2, "user:a", Effect.ALLOW, "tool:*", condition="false")], Identity("a"))[0].grants == ((1, (("limit", Quota(1, "day")),)),)


def test_a_denied_call_is_never_counted():
    grants = [Grant(1, "user:a", Effect.ALLOW, "tool:x", limit="1/day"), Grant(2, "user:a", Effect.DENY, "tool:x")]
    assert _plan(grants, Identity("a")) == ()


def test_the_client_side_of_a_restricted_client_is_counted_too():
    grants = [Grant(1, "user:a", Effect.ALLOW, "tool:x"), Grant(2, "client:bot", Effect.ALLOW, "tool:x", rate="5/min")]
    user_side, client_side = _plan(grants, Identity("a", "bot"), restricted=("bot",))
    assert (user_side.free, [g for g, _ in client_side.grants]) == (1, [2])


def test_a_grant_that_needs_approval_neither_frees_nor_counts_a_call_that_runs_unasked():
    limited = Grant(1, "user:a", Effect.ALLOW, "tool:x", limit="1/day")
    held = Grant(2, "user:a", Effect.ALLOW, "tool:x", approval_by="admins")
    held_limited = Grant(3, "user:a", Effect.ALLOW, "tool:*", approval_by="admins", rate="1/min")
    # decide picks #1 (no approval needed): the call runs unasked, so #1's limit is what counts it.
    for grants in ([limited, held], [held, limited], [limited, held, held_limited]):
        [side] = _plan(grants, Identity("a"))
        assert (side.free, [g for g, _ in side.grants]) == (None, [1])
