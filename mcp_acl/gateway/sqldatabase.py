"""The SQL tools' database: a read-only way in, a writing one, and a deadline on every statement.

Reading: SQLite is opened with `?mode=ro` (plus `PRAGMA query_only`),
PostgreSQL runs in a `SET TRANSACTION READ ONLY` transaction that is always
rolled back. Writing (sql.execute only): SQLite refuses ATTACH and DETACH.

The deadline (`ToolConfig.sql_timeout_seconds`, `MCP_ACL_SQL_TIMEOUT`,
default 10 s) covers every statement of every SQL tool: PostgreSQL's
`statement_timeout`, and on SQLite an interrupt when the deadline passes
(with a progress handler for statements begun after it), so a recursive
CTE that never returns a row cannot hold a worker thread for ever. Either
way the caller gets one sentence: `the statement ran longer than 10 s and was stopped; …`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, Table, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from mcp_acl.gateway.specs import DEFAULT_SQL_TIMEOUT_SECONDS, ToolError

# SQLite calls the progress handler every this many virtual-machine steps:
# often enough to stop within milliseconds, rarely enough to cost nothing.
PROGRESS_STEPS = 10_000
# PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
QUERY_CANCELED = "57014"


def _sqlite_read_only(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
    # Belt and braces: mode=ro already refuses writes to the file.
    conn.execute("PRAGMA query_only = ON")
    return conn


def _forbid_attach(dbapi_conn, _record) -> None:
    # ATTACH and VACUUM INTO would let a statement create files anywhere.
    def authorizer(action, *_args):
        return sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH) else sqlite3.SQLITE_OK

    dbapi_conn.set_authorizer(authorizer)


def sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE code of an error (e.g. `57014`), bare or wrapped by SQLAlchemy; None otherwise."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        state = getattr(candidate, "sqlstate", None)
        if state:
            return state
    return None


class Database:
    """The configured database, with a read-only way in and a writing one."""

    def __init__(self, url: str, timeout_seconds: float = DEFAULT_SQL_TIMEOUT_SECONDS) -> None:
        if not timeout_seconds > 0:
            raise ValueError(f"the SQL statement timeout must be above 0 seconds, not {timeout_seconds!r}")
        self.timeout_seconds = timeout_seconds
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise ValueError("the SQL tools need an SQLite file, not an in-memory database")
            uri = Path(parsed.database).expanduser().resolve().as_uri() + "?mode=ro"
            self.reader = create_engine("sqlite://", creator=lambda: _sqlite_read_only(uri), poolclass=QueuePool)
            self.writer = create_engine(url, connect_args={"timeout": 5})
            event.listen(self.writer, "connect", _forbid_attach)
        elif self.backend == "postgresql":
            self.reader = self.writer = create_engine(url, pool_pre_ping=True)
        else:
            raise ValueError(f"the SQL tools support sqlite:/// and postgresql+psycopg:// URLs, not {self.backend!r}")

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection that cannot write; its transaction is always rolled back."""
        try:
            with self.reader.connect() as conn:
                try:
                    if self.backend == "postgresql":
                        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    with self.deadline(conn):
                        yield conn
                finally:
                    conn.rollback()
        except SQLAlchemyError as exc:
            raise ToolError(f"the database refused: {first_line(exc)}") from exc

    @contextmanager
    def deadline(self, conn: Connection) -> Iterator[None]:
        """Stop what runs on `conn` in this block once `timeout_seconds` have passed, with a ToolError saying so."""
        if self.backend == "postgresql":
            # SET LOCAL: it ends with the transaction, so the pooled connection is left as it was.
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(self.timeout_seconds * 1000))}")
            try:
                yield
            except Exception as exc:
                if sqlstate(exc) == QUERY_CANCELED:
                    raise self._too_long() from exc
                raise
            return
        raw = conn.connection.driver_connection
        stop_at = time.monotonic() + self.timeout_seconds
        expired = False
        armed = True
        lock = threading.Lock()

        def past_deadline() -> bool:
            # A true answer makes SQLite abandon the statement ("interrupted").
            nonlocal expired
            expired = expired or time.monotonic() >= stop_at
            return expired

        def interrupt() -> None:
            # SQLite looks at an interrupt at every loop step, the progress
            # handler only every PROGRESS_STEPS steps: a statement whose rows
            # are each slow (a large randomblob per row) would overrun the
            # deadline by thousands of rows. The lock keeps a late timer from
            # interrupting whoever uses this pooled connection next.
            nonlocal expired
            with lock:
                if armed:
                    expired = True
                    raw.interrupt()

        # The progress handler stays for statements begun after the
        # interrupt: SQLite forgets an interrupt once no statement runs.
        raw.set_progress_handler(past_deadline, PROGRESS_STEPS)
        # Beyond TIMEOUT_MAX a thread cannot wait; so far off, never firing is the same.
        timer = threading.Timer(min(self.timeout_seconds, threading.TIMEOUT_MAX), interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield
        except Exception as exc:
            if expired:
                raise self._too_long() from exc
            raise
        finally:
            with lock:
                armed = False
            timer.cancel()
            # The connection goes back to the pool: the next user sets its own.
            raw.set_progress_handler(None, 0)

    def _too_long(self) -> ToolError:
        return ToolError(
            f"the statement ran longer than {self.timeout_seconds:g} s and was stopped; "
            "ask for less (a filter, a LIMIT) or a simpler query"
        )

    def table(self, conn: Connection, name: Any) -> Table:
        """The reflected table (or view) called `name`; ToolError listing the real ones otherwise."""
        names = self.table_names(conn)
        if not isinstance(name, str) or name not in names:
            raise ToolError(f"there is no table {name!r}; the tables are: {', '.join(names) or 'none'}")
        return Table(name, MetaData(), autoload_with=conn)

    @staticmethod
    def table_names(conn: Connection) -> list[str]:
        """Tables and views of the default schema, by name."""
        found = inspect(conn)
        return sorted(set(found.get_table_names()) | set(found.get_view_names()))


def first_line(exc: SQLAlchemyError) -> str:
    """The first line of the driver's message, for a one-line ToolError."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
