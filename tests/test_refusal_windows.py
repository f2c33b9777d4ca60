"""Refused authentications are counted per source: the first is written, a flood becomes summaries."""

from __future__ import annotations

from mcp_acl.audit.refusal_windows import OTHER_SOURCES, Refusal, RefusalWindows, summarised_count

BAD = Refusal("the token's signature does not verify", subject="mallory")


def _total(rows: list[Refusal]) -> int:
    return sum(summarised_count(r.reason) for r in rows)


def test_the_first_refusal_from_a_source_is_written_at_once_naming_the_address():
    windows = RefusalWindows(seconds=10)
    [row] = windows.note("authentications", "10.0.0.7", BAD, now=0.0)
    assert row.reason == "the token's signature does not verify (from 10.0.0.7)" and row.subject == "mallory"


def test_a_flood_from_one_source_writes_one_row_then_one_summary_per_window_and_counts_every_try():
    windows = RefusalWindows(seconds=10)
    written = []
    for n in range(4000):
        now = n * 0.005  # 4,000 tries in 20 s
        written += windows.note("authentications", "10.0.0.7", BAD, now)
        written += windows.due(now)
    written += windows.flush(20.0)
    assert len(written) <= 4
    assert _total(written) == 4000
    assert written[1].reason.startswith("1999 more refused authentications from 10.0.0.7 in 10 s; the last: ")


def test_a_quiet_window_is_forgotten_so_the_next_refusal_is_written_at_once():
    windows = RefusalWindows(seconds=10)
    assert len(windows.note("authentications", "10.0.0.7", BAD, 0.0)) == 1
    assert windows.due(10.0) == []
    assert len(windows.note("authentications", "10.0.0.7", BAD, 11.0)) == 1


def test_sources_are_counted_apart():
    windows = RefusalWindows(seconds=10)
    assert len(windows.note("authentications", "10.0.0.7", BAD, 0.0)) == 1
    assert len(windows.note("authentications", "10.0.0.8", BAD, 0.0)) == 1
    assert len(windows.note("sign-ins", "10.0.0.7", BAD, 0.0)) == 1


def test_past_the_source_limit_new_sources_share_one_window_and_nothing_is_lost():
    windows = RefusalWindows(seconds=10, max_sources=2)
    written = []
    for address in ("a", "b", "c", "d", "e"):
        written += windows.note("authentications", address, BAD, 0.0)
    assert [r.reason.rsplit("(from ", 1)[1] for r in written] == ["a)", "b)", f"{OTHER_SOURCES})"]
    written += windows.flush(1.0)
    assert _total(written) == 5


def test_a_row_that_could_not_be_queued_is_carried_into_the_next_summary():
    windows = RefusalWindows(seconds=10)
    [first] = windows.note("authentications", "10.0.0.7", BAD, 0.0)
    windows.carry("authentications", "10.0.0.7", first, 0.5)
    [summary] = windows.flush(1.0)
    assert summarised_count(summary.reason) == 1


def test_a_flood_from_many_addresses_of_one_ipv6_64_is_one_source():
    # A host picks any of its /64's 2**64 addresses: one row per address would be one row per try.
    windows = RefusalWindows(seconds=10)
    written = []
    for n in range(500):
        written += windows.note("authentications", f"2001:db8:1:2::{n:x}", BAD, now=n * 0.01)
    written += windows.flush(5.0)
    assert len(written) == 2 and _total(written) == 500
    assert written[0].reason.endswith("(from 2001:db8:1:2::/64)")
