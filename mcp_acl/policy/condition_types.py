"""Type-checking grant conditions before they are stored.

`compile_condition` only parses: `args.path.startswith("x")` (wrong case)
and `args.path + 1` (not a boolean) compile, then error on every call, and
an erroring deny holds, so such a grant would block everything it covers.
`check_condition` refuses them when a grant is written, with a message that
points at the problem:

    >>> print(condition_problem('args.path.startswith("x")'))
    condition 'args.path.startswith("x")': unknown method startswith (did you mean startsWith?)

The checker is Google's CEL type checker (cel-cpp, through the
cel-expr-python package) over the variables the evaluator provides:
`args` is a map from argument names to any value, `user` and `client` are
maps or null (so `dyn`), `now` is a timestamp. A condition passes when it
is well typed and its type is bool, or dyn (a value only known at run
time, such as `args.flag`). Rows already stored are not re-checked here:
the compiled policy still evaluates them, and their errors fail closed.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

from mcp_acl.policy.conditions import Condition, compile_condition
from mcp_acl.policy.model import PolicyError

# CEL's standard functions, methods and macros: only for "did you mean".
STANDARD_NAMES = (
    "all", "bool", "bytes", "contains", "double", "duration", "dyn", "endsWith", "exists",
    "exists_one", "filter", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
    "getFullYear", "getHours", "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
    "has", "int", "map", "matches", "size", "startsWith", "string", "timestamp", "type", "uint",
)

# The standard names that are called on a value (`s.startsWith("x")`).
METHODS = frozenset({
    "all", "contains", "endsWith", "exists", "exists_one", "filter", "getDate", "getDayOfMonth",
    "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours", "getMilliseconds", "getMinutes",
    "getMonth", "getSeconds", "map", "matches", "size", "startsWith",
})

# CEL's internal names for operators, as its errors spell them.
_OPERATORS = {
    "_+_": "+", "_-_": "-", "-_": "unary -", "_*_": "*", "_/_": "/", "_%_": "%",
    "_==_": "==", "_!=_": "!=", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">=",
    "_&&_": "&&", "_||_": "||", "!_": "!", "_?_:_": "?:", "_[_]": "[]", "@in": "in",
}

_ERROR = re.compile(r"ERROR: <input>:\d+:\d+: (.*)")
_UNDECLARED = re.compile(r"undeclared reference to '([^']+)'")
_NO_OVERLOAD = re.compile(r"found no matching overload for '([^']+)' applied to '(.*)'")
# The checker's name for the timestamp type is its protobuf message.
_TYPE_NAMES = {"google.protobuf.Timestamp": "timestamp", "google.protobuf.Duration": "duration"}


# Standard overloads the checker knows but the evaluator (the `cel`
# package) lacks: a condition using one would pass the check, then fail on
# every call. Each is (function, overload id); cel-cpp ignores an id it does
# not know, so tests/policy/test_condition_types.py tries every one.
_MISSING_IN_EVALUATOR = (
    *((method, f"timestamp_to_{part}") for method, part in (
        ("getFullYear", "year_with_tz"), ("getMonth", "month_with_tz"),
        ("getDayOfYear", "day_of_year_with_tz"), ("getDate", "day_of_month_1_based_with_tz"),
        ("getDayOfMonth", "day_of_month_with_tz"), ("getDayOfWeek", "day_of_week_with_tz"),
        ("getHours", "hours_with_tz"), ("getMinutes", "minutes_with_tz"),
        ("getSeconds", "seconds_tz"), ("getMilliseconds", "milliseconds_with_tz"),
    )),
    ("timestamp", "int64_to_timestamp"), ("int", "timestamp_to_int64"),
    ("string", "bool_to_string"), ("bool", "bool_to_bool"), ("bool", "string_to_bool"),
    ("_+_", "add_duration_timestamp"), ("matches", "matches"),  # the global form matches(s, re)
)
# Methods whose time-zone form is among the missing ones.
_TIME_ZONE_METHODS = frozenset(
    name for name, overload in _MISSING_IN_EVALUATOR if overload.endswith("tz")
)


def _environment_config() -> str:
    """The checker's configuration (CEL environment YAML) without the missing overloads."""
    lines = ["stdlib:", "  exclude_functions:"]
    for name, overload in _MISSING_IN_EVALUATOR:
        lines += [f'    - name: "{name}"', "      overloads:", f'        - id: "{overload}"']
    return "\n".join(lines) + "\n"


@functools.cache
def _environment() -> Any:
    # Imported on first use: only writers check, so the gateway, which
    # only evaluates, never loads the checker.
    from cel_expr_python import cel

    dyn = cel.Type.DYN
    config = cel.NewEnvConfigFromYaml(_environment_config())
    return cel.NewEnv(config=config, variables={
        "args": cel.Type.Map(cel.Type.STRING, dyn),
        "user": dyn,
        "client": dyn,
        "now": cel.Type.TIMESTAMP,
    })


def check_condition(source: str) -> Condition:
    """Compile `source` and type-check it; raise PolicyError naming the problem."""
    text = source.strip()
    try:
        condition = compile_condition(source)  # syntax and unknown variables first
    except PolicyError as exc:
        # A misspelt macro (`ids.exist(i, i > 0)`) makes its `i` look like an
        # unknown variable; the misspelt name is the real problem.
        if "unknown variable" in str(exc) and (call := _unknown_call(text)):
            raise PolicyError(f"condition {text!r}: {call}") from None
        raise
    try:
        checked = _environment().compile(text)
    except Exception as exc:  # the checker raises RuntimeError with its report
        raise PolicyError(f"condition {text!r}: {_problem(text, str(exc))}") from None
    if problem := _pattern_problem(text):
        raise PolicyError(f"condition {text!r}: {problem}")
    kind = checked.return_type().name()
    if text in ("user", "client"):
        kind = "map or null"  # declared dyn, but never a boolean at run time
    if kind not in ("BOOL", "DYN"):
        raise PolicyError(f"condition {text!r}: gives {_type_name(kind)}, not a boolean")
    return condition


def condition_problem(source: str) -> str | None:
    """What check_condition would refuse in `source`, or None: for listing stored grants.

    >>> condition_problem('args.path + 1')
    "condition 'args.path + 1': gives int, not a boolean"
    """
    try:
        check_condition(source)
    except PolicyError as exc:
        return str(exc)
    return None


# `.matches(` with a quoted literal pattern (raw or not, either quote).
_LITERAL_PATTERN = re.compile(
    r"""\.\s*matches\s*\(\s*([rR]?(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))\s*\)"""
)


def _pattern_problem(text: str) -> str | None:
    """A literal `matches` pattern the evaluator's regex engine rejects, if any.

    The checker does not look inside patterns, and the evaluator only
    compiles one when it runs, so `args.path.matches("^(?!tmp)")` (no
    look-ahead in its engine) would err on every call.

    >>> _pattern_problem('args.path.matches("^(?!tmp)")')
    "matches: '^(?!tmp)' is not a regular expression the evaluator accepts"
    """
    import cel  # the evaluator, which compiles the pattern on every call

    for literal in _LITERAL_PATTERN.findall(text):
        pattern = literal
        try:
            pattern = cel.evaluate(literal)  # the literal's value, escapes resolved
            cel.evaluate('"".matches(pattern)', {"pattern": pattern})
        except Exception:  # the evaluator raises several kinds; all mean "unusable"
            return f"matches: {pattern!r} is not a regular expression the evaluator accepts"
    return None


def _unknown_call(text: str) -> str | None:
    """The checker's complaint about an unknown function or method in `text`, if any."""
    try:
        _environment().compile(text)
    except Exception as exc:
        problem = _problem(text, str(exc))
        if problem.startswith(("unknown function", "unknown method")):
            return problem
    return None


def _problem(text: str, report: str) -> str:
    """The checker's first error, in our words.

    >>> _problem("size(1)", "ERROR: <input>:1:5: found no matching overload for 'size' applied to '(int)'")
    'size cannot take (int)'
    """
    errors = [m.group(1).strip() for m in _ERROR.finditer(report)] or [(report.splitlines() or ["unknown error"])[0]]
    # An unknown call explains the errors around it (its macro's bound name
    # looks undeclared too), so it is reported first.
    calls = [e for e in errors if (m := _UNDECLARED.search(e)) and _called(m.group(1), text)]
    what = (calls or errors)[0]
    undeclared = _UNDECLARED.search(what)
    if undeclared:
        name = undeclared.group(1)
        kind = _called(name, text) or "name"
        return f"unknown {kind} {name}{_suggestion(name, kind)}"
    overload = _NO_OVERLOAD.search(what)
    if overload:
        function, types = overload.groups()
        for internal, plain in _TYPE_NAMES.items():
            types = types.replace(internal, plain)
        name = f"operator {_OPERATORS[function]}" if function in _OPERATORS else function
        return f"{name} cannot take {types}"
    return what


def _called(name: str, text: str) -> str | None:
    """"method" or "function" when `text` calls `name` that way, else None."""
    if re.search(rf"\.\s*{re.escape(name)}\s*\(", text):
        return "method"
    if re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", text):
        return "function"
    return None


def _suggestion(name: str, kind: str) -> str:
    if kind == "function" and name in METHODS:
        return f" ({name} is a method: write VALUE.{name}(...))"
    if kind == "method" and name in _TIME_ZONE_METHODS:
        return f" (no time-zone argument: now is in UTC, write now.{name}())"
    if kind == "method" and name in STANDARD_NAMES and name not in METHODS:
        return f" ({name} is a function: write {name}(VALUE))"
    if name in STANDARD_NAMES:
        return " (not supported by mcp-acl's condition evaluator)"
    folded = {known.lower(): known for known in STANDARD_NAMES}
    if name.lower() in folded and folded[name.lower()] != name:
        return f" (did you mean {folded[name.lower()]}?)"
    close = difflib.get_close_matches(name, STANDARD_NAMES, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _type_name(kind: str) -> str:
    for internal, plain in _TYPE_NAMES.items():
        kind = kind.replace(internal.upper(), plain)
    return kind if kind == "map or null" else kind.lower().replace("<", "(").replace(">", ")")
