"""Reading YAML files strictly: one-line errors that name the entry (`grants[3].when`).

    >>> load_yaml("a: 1\\na: 2", "policy.yaml")
    Traceback (most recent call last):
    ...
    mcp_acl.store._yaml_fields.FileError: policy.yaml: not valid YAML at line 2, column 1: duplicate key 'a'
"""

from __future__ import annotations

from typing import Any

import yaml

from mcp_acl.store.admin import AdminError


class FileError(AdminError):
    """A policy or test file that does not validate; the message names the entry."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: SafeLoader reports it below
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text; raise FileError with the line and column of a syntax error."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FileError(f"{source}: not valid YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise FileError(f"{source}: not valid YAML: {exc}") from None


def mapping(value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """`value` as a mapping with only `allowed` keys and all `required` ones."""
    if not isinstance(value, dict):
        raise FileError(f"{path}: expected a mapping with {', '.join(allowed)}, got {kind_of(value)}")
    for key in value:
        if key not in allowed:
            raise FileError(f"{path}: unknown key {key!r} (known: {', '.join(allowed)})")
    for key in required:
        if value.get(key) is None:
            raise FileError(f"{path}.{key}: missing (required)")
    return value


def sequence(value: Any, path: str) -> list[Any]:
    """`value` as a list; a missing (null) section is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise FileError(f"{path}: expected a list, got {kind_of(value)}")
    return value


def text(value: Any, path: str, optional: bool = False) -> str | None:
    """`value` as a non-empty string (or None when optional and absent)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise FileError(f"{path}: expected a non-empty string, got {kind_of(value)}")
    return value


def flag(value: Any, path: str) -> bool:
    """`value` as a boolean; absent means false."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FileError(f"{path}: expected true or false, got {kind_of(value)}")
    return value


def kind_of(value: Any) -> str:
    """A short description of a YAML value for error messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)
