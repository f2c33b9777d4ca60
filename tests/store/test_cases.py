"""Policy test cases: parsed strictly, checked against the store, then decided."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mcp_acl.store import PolicyAdmin, PolicyLoader
from mcp_acl.store._yaml_fields import FileError
from mcp_acl.store.cases import parse_cases, run_cases

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_outcomes_say_which_cases_passed(engine):
    admin = PolicyAdmin(engine)
    admin.add_user("bob")
    admin.add_grant("user:bob", "tool:x")
    cases = parse_cases("- {principal: user:bob, target: tool:x, expect: allow}\n- {principal: user:bob, target: tool:y, expect: allow}\n")
    assert [o.passed for o in run_cases(admin, PolicyLoader(engine), cases, NOW)] == [True, False]


def test_a_bad_case_late_in_the_file_stops_the_run_before_any_decision(engine):
    admin = PolicyAdmin(engine)
    admin.add_user("bob")
    cases = parse_cases("- {principal: user:bob, target: tool:x, expect: deny}\n- {principal: user:eve, target: tool:x, expect: deny}\n")
    with pytest.raises(FileError, match=r"^cases\[1\]: user 'eve' does not exist"):
        run_cases(admin, PolicyLoader(engine), cases, NOW)
