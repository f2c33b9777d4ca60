"""The `mcp-acl` command line: administration, serving, tokens, audit, agents.

Each group of commands lives in its own module and adds itself to `app`
through `register(app)`; the order below is the order of `--help`.
"""

from __future__ import annotations

import typer

from mcp_acl.cli import admin, agent, agent_clients, audit, connect, demo, grants, policy_files, quickstart, serve, sessions, tokens

app = typer.Typer(
    name="mcp-acl",
    help="Identity-aware access control for MCP tools used by language models.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)



@app.callback()
def _root() -> None:
    # A callback keeps Typer in "group" mode even while one command exists.
    """Identity-aware access control for MCP tools used by language models."""


for module in (admin, grants, policy_files, tokens, audit, demo, serve, sessions, connect, quickstart, agent_clients, agent):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
