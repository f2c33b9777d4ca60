"""`mcp-acl register CLIENT`: connect Claude Desktop, VS Code, Cursor or the MCP Inspector."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from mcp_acl.cli._common import DatabaseOpt, err, fail, out, settings_from_env
from mcp_acl.cli.tokens import DEFAULT_CLI_CLIENT, mint_checked
from mcp_acl.client_configs import (
    CLIENTS,
    ClientConfigError,
    StdioLaunch,
    default_config_path,
    merge_into_file,
    server_entry,
    snippet,
)
from mcp_acl.config import database_url

STDIO_TOKEN_TTL = timedelta(days=1)  # the longest the embedded issuer signs
# Settings a launched `mcp-acl stdio` must share with this shell to verify its token the same way.
_FORWARDED = (
    "MCP_ACL_HOME", "MCP_ACL_RESOURCE_URL", "MCP_ACL_ISSUER", "MCP_ACL_ISSUER_URL", "MCP_ACL_JWKS_URL",
    "MCP_ACL_ROLES_CLAIM", "MCP_ACL_SCOPE", "MCP_ACL_TOOLS_PATH", "MCP_ACL_TOKEN_TYPES", "MCP_ACL_CLOCK_LEEWAY",
)


def _mcp_acl_command() -> list[str]:
    found = shutil.which("mcp-acl")
    return [found] if found else [sys.executable, "-m", "mcp_acl"]


def _mint(database: str | None, user: str, client_id: str | None) -> str:
    # The same checks as `mcp-acl token`: an unregistered --client is refused.
    minted = mint_checked(database, user=user, client=client_id, ttl=STDIO_TOKEN_TTL)
    err.print(f"note: this token expires in 1 day; run `mcp-acl register … --user {user}` again to renew it", highlight=False)
    return minted


def _stdio_launch(database: str | None, token: str | None, user: str | None, client_id: str | None) -> StdioLaunch:
    if token is None and user is None:
        fail("--stdio needs a token: --token TOKEN (or MCP_ACL_TOKEN), or --user NAME to mint one")
    if token is None:
        token = _mint(database, user, client_id)
    command = _mcp_acl_command()
    env = {name: os.environ[name] for name in _FORWARDED if os.environ.get(name)}
    env["MCP_ACL_DATABASE_URL"] = database_url(database)
    env["MCP_ACL_TOKEN"] = token
    return StdioLaunch(command[0], [*command[1:], "stdio"], env)


def register_client(
    client: Annotated[str, typer.Argument(help=f"The agent client: {', '.join(CLIENTS)}.", show_default=False)],
    url: Annotated[str | None, typer.Option("--url", help="The MCP endpoint; default: MCP_ACL_RESOURCE_URL.")] = None,
    stdio: Annotated[bool, typer.Option("--stdio", help="Have the client launch `mcp-acl stdio` with a token instead.")] = False,
    token: Annotated[
        str | None, typer.Option("--token", envvar="MCP_ACL_TOKEN", help="With --stdio: the access token to use.", show_default=False)
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="With --stdio: mint a 1-day token for this user.")] = None,
    client_id: Annotated[
        str | None, typer.Option("--client", help=f"With --user: the client the token names (default {DEFAULT_CLI_CLIENT}; must be registered when given).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="The server's name in the client's configuration.")] = "mcp-acl",
    write: Annotated[bool, typer.Option("--write", help="Merge into the client's configuration file (a backup is kept).")] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config-file", help="The file to write; default: the client's usual user-wide file.")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Print the configuration that connects an agent client to mcp-acl; --write merges it into the client's file.

    Remote (the client signs in through the browser, OAuth):

      mcp-acl register vscode
      mcp-acl register cursor --url https://acl.example.com/mcp --write

    Launched over stdio with a token (no browser):

      mcp-acl register claude-desktop --stdio --user alice --write
    """
    if client not in CLIENTS:
        fail(f"unknown client {client!r}: choose one of {', '.join(CLIENTS)}")
    if not name or any(ch.isspace() for ch in name):
        fail("--name must be a non-empty name without spaces")
    if stdio and url:
        fail("--url is for a remote server; --stdio launches mcp-acl locally: use one of them")
    if not stdio and (user or client_id):
        fail("--user and --client mint a token for --stdio; a remote client signs in through the browser")
    try:
        if stdio:
            entry = server_entry(client, stdio=_stdio_launch(database, token, user, client_id))
        else:
            entry = server_entry(client, url=url or settings_from_env(database).resource_url)
        if not write:
            sys.stdout.write(json.dumps(snippet(client, name, entry), indent=2) + "\n")
            return
        result = merge_into_file(config_file or default_config_path(client), client, name, entry)
    except (ClientConfigError, OSError) as exc:
        fail(str(exc))
    if result.unchanged:
        out.print(f"server {name!r} in {result.path} is already up to date: nothing written", highlight=False)
        return
    verb = "replaced" if result.replaced else "added"
    backup = f" (backup: {result.backup})" if result.backup else ""
    out.print(f"{verb} server {name!r} in {result.path}{backup}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `mcp-acl register` to the CLI."""
    app.command("register")(register_client)
