"""What every CLI command shares: the database option, error exits, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from mcp_acl.config import database_url
from mcp_acl.policy import PolicyError
from mcp_acl.printable import printable
from mcp_acl.store import AdminError, PolicyAdmin, make_engine
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
    # Escaped: messages quote user text such as `args.tags[i]`, which Rich
    # would otherwise read as markup and drop.
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    err.print(f"[red]error:[/red] {escape(printable(line))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the store's and the policy's named errors into a one-line error and exit 2."""
    try:
        yield
    except (AdminError, StoreError, PolicyError) as exc:
        fail(str(exc))


def table(*columns: str, rows: list[list[Text]], wrap: tuple[str, ...] = ()) -> Table:
    """A Rich table; names stay whole (up to 24 characters), only the `wrap` columns wrap."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, name in enumerate(columns):
        longest = max((len(row[i].plain) for row in rows), default=0)
        floor = None if name in wrap else min(max(longest, len(name)), 24)
        grid.add_column(name, overflow="fold", min_width=floor)
    for row in rows:
        grid.add_row(*row)
    return grid


def cells(*values: Any) -> list[Text]:
    """Table cells shown literally (no Rich markup, control characters escaped); None shows as an empty cell."""
    return [Text("" if v is None else printable(v)) for v in values]


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


@contextmanager
def engine_for(database: str | None, *, must_exist: bool = True) -> Iterator[Engine]:
    """`open_engine` for one command: the pool is closed when the command is done.

    Closing matters in-process (tests, the doc generator): a pool left to the
    garbage collector leaves PostgreSQL connections open and warns.
    """
    engine = open_engine(database, must_exist=must_exist)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def policy_admin(database: str | None) -> Iterator[PolicyAdmin]:
    """The store's write side for one command; its named errors exit 2 with one line."""
    with engine_for(database) as engine, user_errors():
        yield PolicyAdmin(engine)
