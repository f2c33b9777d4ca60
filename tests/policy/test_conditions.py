"""CEL conditions: compile errors say where, evaluation errors are errors."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mcp_acl.policy import PolicyError, compile_condition
from mcp_acl.policy.conditions import ConditionError

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def _context(args=None, user=None, client=None, now=NOW):
    return {"args": args or {}, "user": user, "client": client, "now": now}


def test_condition_over_args_holds_when_true():
    condition = compile_condition('args.path.startsWith("reports/")')
    assert condition.holds(_context({"path": "reports/q3.md"}))
    assert not condition.holds(_context({"path": "secrets/key"}))


def test_condition_sees_user_client_and_now():
    condition = compile_condition(
        'user.sub == "alice" && "analyst" in user.roles && client.id == "agent"'
        ' && !client.restricted && now > timestamp("2025-01-01T00:00:00Z")'
    )
    user = {"sub": "alice", "roles": ["analyst"]}
    client = {"id": "agent", "restricted": False}
    assert condition.holds(_context(user=user, client=client))


def test_source_is_kept_without_surrounding_space():
    assert compile_condition("  args.n > 1 \n").source == "args.n > 1"


def test_syntax_error_names_line_and_column():
    with pytest.raises(PolicyError, match=r"does not compile: at line 1, column 6: Syntax error"):
        compile_condition("args.(")


def test_syntax_error_on_a_later_line_names_that_line():
    with pytest.raises(PolicyError, match=r"at line 2, column 12"):
        compile_condition("args.x == 1 &&\n  args.y ==")


def test_compile_error_is_one_line():
    with pytest.raises(PolicyError) as caught:
        compile_condition("args.(")
    assert "\n" not in str(caught.value)


def test_unknown_variable_is_refused():
    with pytest.raises(PolicyError, match=r"unknown variable\(s\) request: only args, client, now, user"):
        compile_condition('request.path == "x"')


def test_macro_variables_are_not_unknown():
    condition = compile_condition('user.roles.exists(r, r == "admin") && args.ids.all(i, i > 0)')
    assert condition.holds(_context({"ids": [1, 2]}, user={"sub": "a", "roles": ["admin"]}))


def test_unknown_variable_beside_a_macro_is_still_refused():
    with pytest.raises(PolicyError, match=r"unknown variable\(s\) secret"):
        compile_condition("args.ids.all(i, i > 0) && secret")


def test_empty_condition_is_refused():
    with pytest.raises(PolicyError, match="condition is empty"):
        compile_condition("   ")


@pytest.mark.parametrize("source", ["args.n", '"yes"', "1 + 1", "null", "[true]"])
def test_non_boolean_result_is_an_error(source):
    condition = compile_condition(source)
    with pytest.raises(ConditionError, match="not a boolean"):
        condition.holds(_context({"n": 3}))


def test_missing_field_is_an_error():
    condition = compile_condition('args.path == "x"')
    with pytest.raises(ConditionError, match="no field 'path'"):
        condition.holds(_context({}))


def test_wrong_type_is_an_error():
    condition = compile_condition("args.n > 3")
    with pytest.raises(ConditionError):
        condition.holds(_context({"n": "three"}))


def test_field_of_a_null_user_is_an_error():
    condition = compile_condition('user.sub == "alice"')
    with pytest.raises(ConditionError):
        condition.holds(_context(user=None))


def test_condition_records_whether_it_reads_args():
    assert compile_condition("args.n > 1").uses_args
    assert compile_condition("has(args.n)").uses_args
    assert not compile_condition('user.sub == "alice"').uses_args
    assert not compile_condition("true").uses_args
