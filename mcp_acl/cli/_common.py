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

from mcp_acl.config import database_source, database_url
from mcp_acl.policy import PolicyError
from mcp_acl.store import AdminError, PolicyAdmin, make_engine
from mcp_acl.store.engine import MissingDatabase, StoreError, redact, sqlite_file
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
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
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
    """Table cells shown literally (no Rich markup); None shows as an empty cell."""
    return [Text("" if v is None else str(v)) for v in values]


def print_json(value: Any) -> None:
    """Print `value` as JSON on stdout, untouched by Rich markup."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def not_initialised(database: str | None, url: str) -> str:
    """Why a command found no database, where it looked, and how to point it at another one.

    Creating a database is the last suggestion: a user whose server runs on
    another database (`make run` serves .data/) should point at that one, not
    make a second, empty one.
    """
    path = sqlite_file(url)
    where = f"at {path}" if path else f"in {redact(url)}"
    return (
        f"no initialised mcp-acl database {where} ({database_source(database)}): "
        "to use another one, set MCP_ACL_HOME=DIR (the folder holding mcp-acl.db) or pass --database URL; "
        f"to create a new, empty one {'here' if path else 'there'}, run `mcp-acl init`"
    )


def open_engine(database: str | None, *, must_exist: bool = True) -> Engine:
    """An engine for the chosen database; exits with a hint when it is missing or not initialised.

    Only commands that set a database up pass `must_exist=False`; for every
    other one a missing SQLite file or folder is an error and nothing is created.
    """
    url = database_url(database)
    try:
        engine = make_engine(url, create=not must_exist)
        if must_exist and not current_heads(engine):
            engine.dispose()
            fail(not_initialised(database, url))
    except MissingDatabase:
        fail(not_initialised(database, url))
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
