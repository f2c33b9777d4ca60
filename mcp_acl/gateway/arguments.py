"""Checking a tool call's arguments against the tool's input schema before it runs.

Tool handlers are promised validated arguments (see specs.py). The check
runs after the call was allowed, so a hidden tool never reveals its schema
through a validation message.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from mcp_acl.gateway.specs import ToolSpec


class ArgumentCheck:
    """Validators compiled once per tool."""

    def __init__(self) -> None:
        self._validators: dict[str, Draft202012Validator] = {}

    def problem(self, spec: ToolSpec, args: dict[str, Any]) -> str | None:
        """None when `args` fit the tool's schema, else one sentence saying what is wrong.

        Example: {"path": 3} for files.read -> "at path: 3 is not of type 'string'"
        """
        validator = self._validators.get(spec.name)
        if validator is None:
            try:
                Draft202012Validator.check_schema(spec.input_schema)
            except SchemaError:
                return "the tool's input schema is broken, so no call to it can be checked"
            validator = Draft202012Validator(spec.input_schema)
            self._validators[spec.name] = validator
        error = next(iter(sorted(validator.iter_errors(args), key=lambda e: list(e.path))), None)
        if error is None:
            return None
        where = "/".join(str(p) for p in error.path)
        return f"at {where}: {error.message}" if where else error.message
