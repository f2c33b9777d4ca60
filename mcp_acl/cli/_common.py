"""What every CLI command shares: the database option, error exits, output."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine

from mcp_acl.config import database_url
from mcp_acl.store import make_engine
from mcp_acl.store.engine import StoreError, redact
from mcp_acl.store.migrate import current_heads

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="MCP_ACL_DATABASE_URL",
        help="Database URL (sqlite:///FILE or postgresql+psycopg://…); default: an SQLite file in $MCP_ACL_HOME.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

out = Console()
err = Console(stderr=True)

# Exit statuses: 0 done (or allowed), 1 denied / verification failed, 2 bad input or error.
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print a one-line error to stderr and exit (2 unless told otherwise)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    """Print `value` as JSON on stdout, untouched by Rich markup."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def open_engine(database: str | None, *, must_exist: bool = True) -> Engine:
    """An engine for the chosen database; exits with a hint when it is not initialised."""
    url = database_url(database)
    try:
        engine = make_engine(url)
        if must_exist and not current_heads(engine):
            fail(f"the database {redact(url)} is not initialised: run `mcp-acl init` first")
    except StoreError as exc:
        fail(str(exc))
    except typer.Exit:
        raise
    except Exception as exc:
        fail(f"cannot open the database {redact(url)}: {exc.__class__.__name__}: {exc}")
    return engine
