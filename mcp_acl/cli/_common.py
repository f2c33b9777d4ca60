"""What every CLI command shares: the database option, error exits, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from mcp_acl.config import Settings, SettingsError, database_source, database_url
from mcp_acl.policy import PolicyError
from mcp_acl.printable import printable
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

# markup=False: names (users, roles, clients) may hold "[red]" or "[/x]"; Rich would
# read them as markup, dropping text or raising MarkupError after the change was made.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

# Exit statuses: 0 done (or allowed), 1 denied / verification failed, 2 bad input or error.
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print a one-line error to stderr and exit (2 unless told otherwise)."""
    # Escaped: messages quote user text such as `args.tags[i]`, which Rich
    # would otherwise read as markup and drop.
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    err.print(f"[red]error:[/red] {escape(printable(line))}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_from_env(database: str | None = None) -> Settings:
    """The `MCP_ACL_*` settings, or a one-line error and exit 2 when one of them means nothing."""
    try:
        return Settings.from_env(database)
    except SettingsError as exc:
        fail(str(exc))


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the store's and the policy's named errors into a one-line error and exit 2."""
    try:
        yield
    except (AdminError, StoreError, PolicyError) as exc:
        fail(str(exc))


class FittedTable:
    """A table that never loses text: columns when they fit the width, else one block per row.

    Rich crops a table wider than the terminal (a pipe counts as 80
    columns): a name loses its tail, a column vanishes. So the table is laid
    out only when every column can show its cells whole (names on one line,
    the `wrap` columns wrapped between words); otherwise each row is printed
    as `column  value` lines, the values wrapping, like `psql`'s expanded mode.
    """

    # Between two columns: one space of padding each side and the box's separator.
    _GAP = 3
    # The fewest cells a block's value column gets: room for a double-width character.
    _MIN_VALUE = 4

    def __init__(self, columns: tuple[str, ...], rows: list[list[Text]], wrap: tuple[str, ...]) -> None:
        self.columns, self.rows, self.wrap = columns, rows, wrap

    def _narrowest(self) -> int:
        """The fewest terminal cells the table needs without cutting a name or a word."""
        needed = 0
        for i, name in enumerate(self.columns):
            texts = [name, *(row[i].plain for row in self.rows)]
            pieces = (t.split() if name in self.wrap else t.splitlines() for t in texts)
            needed += max((cell_len(piece) for group in pieces for piece in group), default=0)
        return needed + self._GAP * (len(self.columns) - 1)

    def _table(self) -> Table:
        grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for name in self.columns:
            grid.add_column(name, overflow="fold", no_wrap=name not in self.wrap)
        for row in self.rows:
            grid.add_row(*row)
        return grid

    def _blocks(self) -> Iterator[Table]:
        for row in self.rows:
            block = Table.grid(padding=(0, 2))
            block.add_column(no_wrap=True, style="bold")
            block.add_column(overflow="fold")
            for name, cell in zip(self.columns, row):
                block.add_row(name, cell)
            yield block

    def _stacked(self) -> Iterator[Text]:
        for row in self.rows:
            lines = Text(overflow="fold")
            for j, (name, cell) in enumerate(zip(self.columns, row)):
                lines.append(("\n" if j else "") + name + ":", style="bold")
                lines.append("\n")
                lines.append_text(cell)
            yield lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self._narrowest() <= options.max_width:
            yield self._table()
            return
        # Below a name's width plus a few cells a grid drops text (a name ends
        # in "…", a double-width character has no cell to go to): each name
        # then gets a line of its own, above its value, both folded.
        stacked = options.max_width < max(cell_len(name) for name in self.columns) + 2 + self._MIN_VALUE
        for i, block in enumerate(self._stacked() if stacked else self._blocks()):
            if i:
                yield Text("")
            yield block


def table(*columns: str, rows: list[list[Text]], wrap: tuple[str, ...] = ()) -> FittedTable:
    """A table for `out.print`: names stay whole, only the `wrap` columns wrap; never cropped (see FittedTable)."""
    return FittedTable(columns, rows, wrap)


def cells(*values: Any) -> list[Text]:
    """Table cells shown literally (no Rich markup, control characters escaped); None shows as an empty cell."""
    return [Text("" if v is None else printable(v)) for v in values]


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
