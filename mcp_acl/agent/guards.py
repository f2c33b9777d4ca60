"""Checks on the model's tool calls before anything reaches the gateway.

A call must name a tool in the identity's current catalogue and carry
arguments that match the tool's input schema; the same call may be made only
so many times in one task. A failed check becomes a tool message the model
can act on (or, for repeats, the end of the task), never a gateway request.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.validators import validator_for
from mcp_types import Tool
from referencing.exceptions import Unresolvable

_MAX_PROBLEMS = 5


class Catalogue:
    """The tools the identity may use right now, by name, with compiled argument validators."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools = list(tools)
        self._by_name = {tool.name: tool for tool in self.tools}
        self._validators: dict[str, Any] = {}

    @property
    def names(self) -> list[str]:
        """Tool names in catalogue order."""
        return [tool.name for tool in self.tools]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def unknown_tool_message(self, name: str) -> str | None:
        """None when `name` is in the catalogue, else what to tell the model (the same for hidden and made-up names)."""
        if name in self._by_name:
            return None
        if not self.tools:
            return f'ERROR: there is no tool named "{name}", and you have no tools. Answer without calling a tool.'
        listed = ", ".join(self.names)
        return (
            f'ERROR: there is no tool named "{name}". The tools you have are: {listed}. '
            "Call one of these, or answer without a tool."
        )

    def argument_message(self, name: str, arguments: Any) -> str | None:
        """None when `arguments` match the tool's input schema, else what is wrong, for the model."""
        problems = self.argument_problems(name, arguments)
        if not problems:
            return None
        return (
            f'ERROR: the arguments for "{name}" do not match its schema: {"; ".join(problems)}. '
            "Call it again with corrected arguments."
        )

    def argument_problems(self, name: str, arguments: Any) -> list[str]:
        """Each way `arguments` break the schema, as `where: what` (empty when they fit)."""
        if not isinstance(arguments, Mapping):
            return [f"the arguments must be a JSON object, not {type(arguments).__name__}"]
        validator = self._validator(name)
        if isinstance(validator, str):
            return [validator]
        try:
            errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: [str(p) for p in e.absolute_path])
        except Unresolvable as exc:
            # Fail closed: a schema we cannot follow is not a schema the call passed.
            return [f"its schema cannot be checked ({exc}); tell the user this tool is unusable"]
        return [_problem(error) for error in errors[:_MAX_PROBLEMS]]

    def _validator(self, name: str) -> Any:
        if name not in self._validators:
            schema = dict(self._by_name[name].input_schema or {"type": "object"})
            cls = validator_for(schema, default=Draft202012Validator)
            try:
                cls.check_schema(schema)
                self._validators[name] = cls(schema)
            except SchemaError as exc:
                self._validators[name] = f"its schema is invalid ({exc.message}); tell the user this tool is unusable"
        return self._validators[name]


def _problem(error: Any) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where or 'arguments'}: {error.message}"


def call_key(name: str, arguments: Any) -> str:
    """The identity of a call for repeat counting: name plus canonical JSON arguments."""
    return name + " " + json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class RepeatCounter:
    """Counts identical calls within one task; the call after `max_repeats` identical ones is refused."""

    def __init__(self, max_repeats: int) -> None:
        self.max_repeats = max_repeats
        self._seen: Counter[str] = Counter()

    def admit(self, name: str, arguments: Any) -> bool:
        """Count the call; False when it is one identical call too many."""
        key = call_key(name, arguments)
        self._seen[key] += 1
        return self._seen[key] <= self.max_repeats
