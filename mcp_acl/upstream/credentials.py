"""Resolving credential references (`env:VAR`, `file:/path`) when a connection opens.

Only references are stored; their values are read here, at connect time,
and never logged or kept anywhere but in the open connection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class MissingCredential(RuntimeError):
    """A reference cannot be resolved; the message names the reference, never a value."""


def resolve(reference: str) -> str:
    """The value `reference` points to: an environment variable or a file's contents (trailing newline dropped)."""
    kind, _, where = reference.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise MissingCredential(f"the environment variable {where} is not set")
        return value
    if kind == "file":
        try:
            return Path(where).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise MissingCredential(f"the file {where} cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    raise MissingCredential(f"{reference.split(':')[0]!r} is not a reference kind (use env:VAR or file:/path)")


def resolve_all(references: Mapping[str, str]) -> dict[str, str]:
    """Each name's value (see `resolve`)."""
    return {name: resolve(ref) for name, ref in references.items()}
