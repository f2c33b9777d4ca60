"""`mcp-acl demo`: initialise the database and seed the demo policy, workspace and shop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, fail, open_engine, print_json
from mcp_acl.config import data_home
from mcp_acl.demo import DemoError, DemoInfo, seed_demo
from mcp_acl.gateway.toolload import tool_config_from_env
from mcp_acl.store import AdminError, StoreError, upgrade

HomeOpt = Annotated[
    Optional[Path],
    typer.Option("--home", help="Folder for the workspace and shop.db; default: $MCP_ACL_HOME.", show_default=False),
]


def _summary(info: DemoInfo) -> list[str]:
    made = f"{len(info.files_created)} files created" if info.files_created else "existing files kept"
    lines = [
        f"demo seeded under {info.home}",
        f"  workspace  {info.workspace} ({made})",
        f"  shop       {info.shop_db} ({'created' if info.shop_created else 'existing database kept'})",
        "  users      " + ", ".join(f"{u} ({', '.join(r)})" for u, r in info.users.items()),
        "  clients    " + ", ".join(f"{c} ({'restricted' if r else 'unrestricted'})" for c, r in info.clients.items()),
        "  grants",
    ]
    lines += [f"    {g.describe()}  -- {g.note}" for g in info.grants]
    config = tool_config_from_env(info.home)
    if Path(config.files_root) != info.workspace or config.sql_url != f"sqlite:///{info.shop_db}":
        lines.append("note: MCP_ACL_FILES_ROOT or MCP_ACL_SQL_URL is set, so the tools will use those, not the demo's")
    return lines


def demo(database: DatabaseOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Initialise the database and seed the demo (alice the analyst, bob the intern, a restricted ollama-agent).

    Only an empty policy is seeded; the workspace files and shop.db are created when missing.

    Example: MCP_ACL_HOME=/tmp/acl-demo mcp-acl demo
    """
    engine = open_engine(database, must_exist=False)
    try:
        upgrade(engine)
        info = seed_demo(engine, home or data_home())
    except (DemoError, AdminError, StoreError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot create the demo files: {exc}")
    if as_json:
        print_json(info.as_dict())
        return
    for line in _summary(info):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add `demo` to the CLI."""
    app.command()(demo)
