"""Session commands: list the live MCP sessions, kill one."""

from __future__ import annotations

from typing import Annotated

import typer

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, cells, fail, open_engine, out, print_json, table
from mcp_acl.printable import printable
from mcp_acl.store.engine import StoreError

sessions_app = typer.Typer(help="Live MCP sessions: list them, kill one.", no_args_is_help=True)


@sessions_app.command("list")
def list_sessions(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List the sessions that have not ended, oldest first.

    Example: mcp-acl sessions list --json
    """
    from mcp_acl.gateway.sessions import SessionStore  # loads the MCP SDK: only when asked

    try:
        rows = SessionStore(open_engine(database)).live()
    except StoreError as exc:
        fail(str(exc))
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        out.print("no live sessions")
        return
    # Subjects, clients and issuers come from tokens: shown literally, never as Rich markup.
    out.print(table(
        "id", "subject", "client", "issuer", "transport", "started", "last seen",
        rows=[
            cells(
                r.id, r.subject or "-", r.client_id or "-", r.issuer or "-", r.transport,
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"), r.last_seen_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for r in rows
        ],
        wrap=("issuer",),
    ))


@sessions_app.command("kill")
def kill_session(
    session_id: Annotated[str, typer.Argument(metavar="ID", help="The session id, as `sessions list` shows it.")],
    database: DatabaseOpt = None,
) -> None:
    """End a live session: its next request is refused and its notification stream closes.

    Example: mcp-acl sessions kill 3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b
    """
    from mcp_acl.gateway.sessions import SessionKillError, SessionStore  # loads the MCP SDK: only when asked

    try:
        row = SessionStore(open_engine(database)).kill(session_id)
    except (SessionKillError, StoreError) as exc:
        fail(str(exc))
    out.print(f"killed session {printable(session_id)} ({printable(row.subject or row.client_id)})", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add the `sessions` command group to the CLI."""
    app.add_typer(sessions_app, name="sessions")
