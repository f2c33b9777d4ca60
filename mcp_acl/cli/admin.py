"""Admin commands: init, users, roles, clients, grants, check."""

from __future__ import annotations

import typer

from mcp_acl.cli._common import DatabaseOpt, open_engine, out
from mcp_acl.store import upgrade
from mcp_acl.store.engine import redact


def init(database: DatabaseOpt = None) -> None:
    """Create the database, or upgrade it to the newest schema. Safe to run again.

    Example: mcp-acl init --database postgresql+psycopg://acl@db/acl
    """
    engine = open_engine(database, must_exist=False)
    upgrade(engine)
    out.print(f"database ready: {redact(str(engine.url.render_as_string(hide_password=False)))}")


def register(app: typer.Typer) -> None:
    """Add the admin commands to the CLI."""
    app.command()(init)
