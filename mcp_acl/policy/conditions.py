"""Grant conditions in CEL, the Common Expression Language.

A condition sees four variables: `args` (the call's arguments), `user`
(`{"sub", "roles"}`, or null for a service token), `client` (`{"id",
"restricted"}`) and `now` (a timestamp). Example:

    >>> c = compile_condition('args.path.startsWith("reports/")')
    >>> c.holds({"args": {"path": "reports/q3.md"}, "user": None, "client": None, "now": None})
    True

Any evaluation error (a missing field, a wrong type, a non-boolean result)
raises ConditionError; the decision engine turns that into "false" for an
allow and "true" for a deny, so errors always fail closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mcp_acl.policy.model import PolicyError

VARIABLES = frozenset({"args", "user", "client", "now"})


class ConditionError(Exception):
    """A condition could not be evaluated to a boolean."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled CEL condition, ready to evaluate many times."""

    source: str
    program: Any
    uses_args: bool
    # The variables the expression reads. Only those are handed to CEL:
    # converting an unused `user` or `now` costs more than evaluating most
    # conditions.
    inputs: tuple[str, ...] = tuple(sorted(VARIABLES))

    def holds(self, context: dict[str, Any]) -> bool:
        """Evaluate against `context`; raise ConditionError unless the result is a bool."""
        try:
            result = self.program.execute({name: context[name] for name in self.inputs})
        except KeyError as exc:
            raise ConditionError(f"{self.source}: no field {exc} in the input") from exc
        except Exception as exc:  # the CEL runtime raises several kinds; all mean "error"
            raise ConditionError(f"{self.source}: {exc}") from exc
        if not isinstance(result, bool):
            raise ConditionError(f"{self.source}: gave {type(result).__name__}, not a boolean")
        return result


_WHERE = re.compile(r"<input>:(\d+):(\d+): (.*)")

# The CEL library reports the variable a comprehension macro binds (the `r`
# in `user.roles.exists(r, r == "admin")`) among the expression's variables;
# it is local to the macro, not an input, so it must not count as unknown.
# (A bound name misused outside its macro is not caught here; it fails at
# evaluation, and evaluation errors fail closed.)
_MACRO_BINDING = re.compile(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)


def _one_line(message: str) -> str:
    """The parser's multi-line report as one line naming where it went wrong.

    >>> _one_line("Failed to parse ...: ERROR: <input>:1:6: Syntax error: x\\n| args.(\\n| .....^")
    'at line 1, column 6: Syntax error: x'
    """
    found = _WHERE.search(message)
    if found:
        line, column, what = found.groups()
        return f"at line {line}, column {column}: {what.strip()}"
    return message.splitlines()[0] if message else "unknown error"


def compile_condition(source: str) -> Condition:
    """Compile a CEL expression; raise PolicyError saying where it is wrong."""
    text = source.strip()
    if not text:
        raise PolicyError("condition is empty")
    # Imported on first use: the CEL runtime is slow to load, and commands
    # such as `mcp-acl revoke` never evaluate a condition.
    import cel

    try:
        program = cel.compile(text)
    except Exception as exc:
        raise PolicyError(f"condition {text!r} does not compile: {_one_line(str(exc))}") from exc
    bound = set(_MACRO_BINDING.findall(text))
    unknown = sorted(set(program.variables()) - VARIABLES - bound)
    if unknown:
        raise PolicyError(
            f"condition {text!r} uses unknown variable(s) {', '.join(unknown)}: "
            f"only {', '.join(sorted(VARIABLES))} are defined"
        )
    inputs = tuple(sorted(VARIABLES.intersection(program.variables())))
    return Condition(source=text, program=program, uses_args="args" in inputs, inputs=inputs)
