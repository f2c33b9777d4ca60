"""`mcp-acl usage`: calls counted against grant quotas (--limit, --rate), per principal, grant and window."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, engine_for, fail, out, print_json, table, user_errors
from mcp_acl.policy import PolicyError, parse_principal
from mcp_acl.store.usage import read_usage


def usage(
    user: Annotated[str | None, typer.Option("--user", metavar="NAME", help="Only this user's calls.")] = None,
    client: Annotated[str | None, typer.Option("--client", metavar="CLIENT_ID", help="Only this service client's own calls (a token with no user).")] = None,
    history: Annotated[bool, typer.Option("--all", help="Windows that have ended too, not only the current ones.")] = False,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show how much of each grant's quota is used: calls per principal, grant and window.

    Examples:

      mcp-acl usage

      mcp-acl usage --user alice --json
    """
    if user is not None and client is not None:
        fail("--user and --client name different callers: give one of them")
    principal = f"user:{user}" if user is not None else f"client:{client}" if client is not None else None
    if principal is not None:
        try:
            parse_principal(principal)
        except PolicyError as exc:
            fail(str(exc))
    now = datetime.now(timezone.utc)
    with engine_for(database) as engine, user_errors():
        rows = read_usage(engine, principal, now, history)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        out.print("no calls counted against a quota" + ("" if history else " in the current windows"))
        return
    shown = [
        cells(
            r.principal, f"#{r.grant_id}", r.kind, r.quota or "(grant gone)", r.calls,
            r.window_start.strftime("%Y-%m-%d %H:%M:%S"), r.resets_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        for r in rows
    ]
    out.print(table("principal", "grant", "kind", "quota", "calls", "window (UTC)", "resets (UTC)", rows=shown))


def register(app: typer.Typer) -> None:
    """Add usage to the CLI."""
    app.command()(usage)
