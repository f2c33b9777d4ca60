"""The `mcp-acl` command line: administration, serving, tokens, audit, agents.

Each group of commands lives in its own module and adds itself to `app`
through `register(app)`; the order below is the order of `--help`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mcp_acl.cli import admin, agent, agent_clients, approvals, audit, connect, demo, grants, policy_files, policy_replay, quickstart, serve, sessions, tokens, upstreams, usage

app = typer.Typer(
    name="mcp-acl",
    help="Identity-aware access control for MCP tools used by language models.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)



def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"mcp-acl {_installed_version()}")
        raise typer.Exit()


def _installed_version() -> str:
    """The installed distribution's version (an editable install counts); a hint when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp-acl")
    except PackageNotFoundError:
        return "unknown (not installed: run `pip install -e .`)"


@app.callback()
def _root(
    _version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    # A callback keeps Typer in "group" mode even while one command exists.
    """Identity-aware access control for MCP tools used by language models."""


for module in (admin, grants, usage, approvals, policy_files, policy_replay, upstreams, tokens, audit, demo, serve, sessions, connect, quickstart, agent_clients, agent):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
