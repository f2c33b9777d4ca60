"""Conditions are type-checked before they are stored; the refusals point at the problem."""

from __future__ import annotations

import doctest
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

import mcp_acl.policy.condition_types
from mcp_acl.demo import GRANTS
from mcp_acl.policy import PolicyError, check_condition, compile_condition, condition_problem

ROOT = Path(__file__).resolve().parents[2]


def test_condition_type_examples_hold():
    result = doctest.testmod(mcp_acl.policy.condition_types)
    assert result.attempted > 0 and result.failed == 0


def test_wrong_case_method_is_refused_with_a_suggestion():
    with pytest.raises(PolicyError) as caught:
        check_condition('args.path.startswith("x")')
    assert str(caught.value) == (
        "condition 'args.path.startswith(\"x\")': unknown method startswith (did you mean startsWith?)"
    )


def test_non_boolean_result_is_refused():
    with pytest.raises(PolicyError, match=r"^condition 'args\.path \+ 1': gives int, not a boolean$"):
        check_condition("args.path + 1")


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("foo(1)", "unknown function foo"),
        ("args.ids.exist(i, i > 0)", "unknown method exist (did you mean exists?)"),
        ("args.ids.Exists(i, i > 0)", "unknown method Exists (did you mean exists?)"),
        ("args.ids.all(i, i > 0) && secret", "unknown variable(s) secret"),
        ("now.getHour() < 18", "unknown method getHour (did you mean getHours?)"),
        ('startsWith(args.path, "x")', "startsWith is a method: write VALUE.startsWith(...)"),
        ("args.path.lowerAscii() == 'x'", "unknown method lowerAscii"),
        ('"a" + 1 == "a1"', "operator + cannot take (string, int)"),
        ("now + 1 > now", "operator + cannot take (timestamp, int)"),
        ("args.ok || 1", "operator || cannot take (dyn, int)"),
        ("size(1) > 0", "size cannot take (int)"),
        ("now", "gives timestamp, not a boolean"),
        ('args.n == 1 ? "a" : "b"', "gives string, not a boolean"),
        ("user", "gives map or null, not a boolean"),
        ("request.ip == '1'", "unknown variable(s) request"),
        ("args.(", "does not compile: at line 1, column 6"),
    ],
)
def test_ill_typed_condition_is_refused_naming_the_problem(source, says):
    with pytest.raises(PolicyError) as caught:
        check_condition(source)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def _documented_conditions() -> set[str]:
    """Every condition the README and docs show, as `--when '...'` or `when: ...`."""
    found = {c for _, _, c, _ in GRANTS if c}
    for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        text = path.read_text()
        found.update(re.findall(r"--when '([^']+)'", text))
        found.update(m.strip() for m in re.findall(r"^\s*-?\s*when: (.+?)(?:\s+#.*)?$", text, re.M))
    return found


CONDITIONS_THAT_WORK = [
    'args.path.startsWith("reports/")',
    'has(args.path) && (args.path == "reports" || args.path.startsWith("reports/"))',
    '"auditor" in user.roles || user.sub == "alice"',
    'user.roles.exists(r, r.startsWith("ops-"))',
    'now < timestamp("2026-07-01T00:00:00Z")',
    "client != null && !client.restricted",
    'user.sub == "alice" && "analyst" in user.roles && client.id == "agent"',
    "args.tags[0] == 'q3'",
    "args.ids.all(i, i > 0) && size(args.ids) < 10",
    "now.getHours() >= 9 && now.getDayOfWeek() in [1, 2, 3, 4, 5]",
    "args.flag",
    "true",
    'args.path.matches("^[a-z/]+$") && !args.path.contains("..")',
    "args.n > 1.5",
    'args.rows <= 1000 && !args.path.contains("..")',
]

# A call every condition above can be evaluated against without an error.
CONTEXT = {
    "args": {"path": "reports/q3.md", "tags": ["q3"], "ids": [1, 2], "flag": True, "n": 2, "rows": 10},
    "user": {"sub": "alice", "roles": ["analyst", "auditor"]},
    "client": {"id": "agent", "restricted": False},
    "now": datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc),
}


@pytest.mark.parametrize("source", sorted(_documented_conditions()) + CONDITIONS_THAT_WORK)
def test_conditions_that_work_at_run_time_pass_the_check(source):
    assert condition_problem(source) is None


@pytest.mark.parametrize("source", CONDITIONS_THAT_WORK)
def test_the_examples_really_evaluate_at_run_time(source):
    assert compile_condition(source).holds(CONTEXT) in (True, False)


def test_documented_conditions_were_found():
    assert len(_documented_conditions()) >= 3


def test_the_evaluator_still_compiles_what_the_checker_refuses():
    # Rows stored before the check keep working the old way: they compile,
    # error when evaluated, and the decision fails closed.
    assert compile_condition('args.path.startswith("x")').source == 'args.path.startswith("x")'


# One condition per standard overload the checker knows and the evaluator
# lacks (condition_types._MISSING_IN_EVALUATOR), with what the refusal says.
NOT_IN_THE_EVALUATOR = [
    ('now.getFullYear("UTC") > 2025', "no time-zone argument: now is in UTC, write now.getFullYear()"),
    ('now.getMonth("UTC") < 12', "write now.getMonth()"),
    ('now.getDayOfYear("UTC") > 0', "write now.getDayOfYear()"),
    ('now.getDate("UTC") > 0', "write now.getDate()"),
    ('now.getDayOfMonth("UTC") >= 0', "write now.getDayOfMonth()"),
    ('now.getDayOfWeek("Europe/Paris") < 5', "write now.getDayOfWeek()"),
    ('now.getHours("Europe/Paris") >= 9', "unknown method getHours (no time-zone argument"),
    ('now.getMinutes("UTC") >= 0', "write now.getMinutes()"),
    ('now.getSeconds("UTC") >= 0', "write now.getSeconds()"),
    ('now.getMilliseconds("UTC") >= 0', "write now.getMilliseconds()"),
    ("now > timestamp(1700000000)", "timestamp cannot take (int)"),
    ("int(now) > 0", "int cannot take (timestamp)"),
    ('string(args.flag == true) == "true"', "string cannot take (bool)"),
    ("bool(true)", "unknown function bool (not supported"),
    ('bool("true")', "unknown function bool (not supported"),
    ('duration("1h") + now > now', "operator + cannot take (duration, timestamp)"),
    ('matches(args.path, "^r")', "matches is a method: write VALUE.matches(...)"),
]


@pytest.mark.parametrize(("source", "says"), NOT_IN_THE_EVALUATOR)
def test_what_the_evaluator_cannot_run_is_refused(source, says):
    # The checker knew these, so they were stored, then erred on every call
    # (an erring deny blocks everything it covers).
    with pytest.raises(Exception):
        compile_condition(source).holds(CONTEXT)
    with pytest.raises(PolicyError) as caught:
        check_condition(source)
    assert says in str(caught.value)


def test_every_missing_overload_has_a_refused_example():
    from mcp_acl.policy.condition_types import _MISSING_IN_EVALUATOR

    assert len(NOT_IN_THE_EVALUATOR) == len(_MISSING_IN_EVALUATOR)


@pytest.mark.parametrize(
    ("source", "pattern"),
    [
        ('args.path.matches("^(?!tmp/)")', "'^(?!tmp/)'"),  # no look-ahead in the evaluator's engine
        ('args.path.matches("[")', "'['"),
        ("has(args.p) && args.p.matches('ok') && args.q.matches(r'(')", "'('"),
    ],
)
def test_a_literal_pattern_the_evaluator_rejects_is_refused(source, pattern):
    with pytest.raises(Exception):
        compile_condition(source).holds({**CONTEXT, "args": {"path": "x", "p": "ok", "q": "x"}})
    with pytest.raises(PolicyError) as caught:
        check_condition(source)
    assert str(caught.value).endswith(f"matches: {pattern} is not a regular expression the evaluator accepts")


def test_patterns_the_evaluator_accepts_pass():
    assert condition_problem(r'args.path.matches(r"^\d+$") && args.path.matches("\\p{L}") && args.p.matches(args.q)') is None
