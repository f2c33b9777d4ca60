"""`mcp-acl policy export|import|test`: the policy as a YAML file."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `policy` command group to the CLI."""
