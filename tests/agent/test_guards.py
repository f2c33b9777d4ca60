"""The agent's own limit on a task going in circles: identical calls are counted."""

from __future__ import annotations

from mcp_acl.agent.guards import RepeatCounter, call_key


def test_same_call_is_admitted_max_repeats_times():
    counter = RepeatCounter(3)
    assert [counter.admit("notes.read", {"path": "a"}) for _ in range(4)] == [True, True, True, False]


def test_repeat_identity_ignores_argument_order():
    assert call_key("t", {"a": 1, "b": 2}) == call_key("t", {"b": 2, "a": 1})
    assert call_key("t", {"a": 1}) != call_key("t", {"a": 2})
