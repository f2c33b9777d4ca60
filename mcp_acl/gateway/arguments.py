"""Checking a tool call's arguments against the tool's input schema before it runs.

Tool handlers are promised validated arguments (see specs.py). The check
runs after the call was allowed, so a hidden tool never reveals its schema
through a validation message.

Every allowed call is checked, so the verdict comes from `jsonschema-rs`
(compiled, a fraction of a microsecond for a small schema); only when it
finds a problem does the `jsonschema` package word it, in the sentence
callers have always been shown. Both follow JSON Schema 2020-12 and treat
`format` as an annotation. Should they ever disagree on a refusal, the
call is still refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from mcp_acl.gateway.specs import ToolSpec

BROKEN = "the tool's input schema is broken, so no call to it can be checked"


@dataclass(frozen=True)
class _Compiled:
    fast: Any  # a jsonschema_rs validator, or None when it could not compile the schema
    wording: Draft202012Validator


class ArgumentCheck:
    """Validators compiled once per tool."""

    def __init__(self) -> None:
        self._validators: dict[str, _Compiled | None] = {}

    def problem(self, spec: ToolSpec, args: dict[str, Any]) -> str | None:
        """None when `args` fit the tool's schema, else one sentence saying what is wrong.

        Example: {"path": 3} for files.read -> "at path: 3 is not of type 'string'"
        """
        if spec.name not in self._validators:
            self._validators[spec.name] = _compile(spec.input_schema)
        compiled = self._validators[spec.name]
        if compiled is None:
            return BROKEN
        if compiled.fast is not None:
            try:
                if compiled.fast.is_valid(args):
                    return None
            except Exception:
                pass  # whatever the fast check cannot handle, the full one decides
        error = next(iter(sorted(compiled.wording.iter_errors(args), key=lambda e: list(e.path))), None)
        if error is None:
            if compiled.fast is None:
                return None
            return _fast_problem(compiled.fast, args)
        where = "/".join(str(p) for p in error.path)
        return f"at {where}: {error.message}" if where else error.message


def _compile(schema: dict[str, Any]) -> _Compiled | None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return None
    try:
        fast = jsonschema_rs.Draft202012Validator(schema, validate_formats=False)
    except Exception:
        fast = None
    return _Compiled(fast, Draft202012Validator(schema))


def _fast_problem(fast: Any, args: dict[str, Any]) -> str:
    # The two validators disagree: the refusal stands, worded by the one that refused.
    try:
        fast.validate(args)
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(str(p) for p in exc.instance_path)
        return f"at {where}: {exc.message}" if where else exc.message
    except Exception as exc:
        return f"the arguments could not be checked: {exc.__class__.__name__}"
    return "the arguments could not be checked"
