"""The DBAPI connections under every request's reads and audit append.

The session check and the policy revision are read on every tools/call.
Through SQLAlchemy Core each cost 60–80 µs on SQLite, most of it statement
and result machinery; the same SQL on the driver's connection (`Lookup`)
costs a fraction. Each read sees what is committed now: on SQLite it runs
outside any transaction; on PostgreSQL in the driver's implicit transaction
at the server's default READ COMMITTED (each statement takes a fresh
snapshot), which the audit append or the pool's reset rolls back.

Which connection: `one_connection` shares one pooled connection across an
admission in a worker thread; `StandingConnection` (SQLite) keeps one off
the pool for admissions on the event loop that never wait. `read_soon`
runs a lone read (the deny-list, a personal token) the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mcp_acl.store.engine import StoreError

_T = TypeVar("_T")

# What this thread's Lookups and appends use: `engine`'s connection `raw`
# (None until first use) and whether they may wait (see StandingConnection).
_held = threading.local()


@contextmanager
def one_connection(engine: Engine) -> Iterator[None]:
    """In this block (this thread), Lookups and audit appends on `engine` share one pooled connection.

    The connection is checked out on first use (so a failure shows where it
    did before) and returned at the end. One checkout instead of three per
    call; each statement still runs as before (reads outside a transaction
    or in their own, appends in their own committed transaction).
    """
    if getattr(_held, "engine", None) is not None:
        yield
        return
    _held.engine, _held.raw = engine, None
    try:
        yield
    finally:
        raw, _held.engine, _held.raw = _held.raw, None, None
        if raw is not None:
            raw.close()


@contextmanager
def pooled(engine: Engine) -> Iterator[Any]:
    """A DBAPI connection: the one shared by `one_connection`, else a fresh checkout returned after."""
    if getattr(_held, "engine", None) is not engine:
        raw = engine.raw_connection()
        try:
            yield raw.driver_connection
        except BaseException:
            _release(raw)
            raise
        raw.close()
        return
    if _held.raw is None:
        # In a StandingConnection block whose connection a failed statement
        # closed, a pooled one (which may wait) must not stand in for it.
        must_not_wait("the standing connection was closed by a failed statement")
        _held.raw = engine.raw_connection()
    try:
        yield _held.raw.driver_connection
    except BaseException as exc:
        if getattr(_held, "no_wait", False) and _is_busy(exc):
            # The statement was refused before it did anything (and an
            # append rolls back): the connection is fine, the work waits elsewhere.
            raise WouldWait("the database is locked by another writer") from exc
        # A failed statement may have left the connection unusable: the
        # next use in this block checks out another.
        raw, _held.raw = _held.raw, None
        _release(raw)
        raise


def _release(raw: Any) -> None:
    # A connection the server dropped (PostgreSQL restarted, the backend
    # was terminated) is discarded, not handed back to the pool, whose
    # reset would fail on it and log a traceback for each one.
    driver = raw.driver_connection
    if getattr(driver, "broken", False) or getattr(driver, "closed", False):
        raw.invalidate()
    else:
        raw.close()


class Lookup:
    """One SELECT (placeholders written `?`) giving its first row as a tuple, or None; `failure` starts the error.

    `memo=True`: inside a StandingConnection block the row may come from the
    block's memo, kept only while no other connection has committed (so it
    is what the SELECT would read now). Only for tables the standing
    connection never writes itself.
    """

    def __init__(self, engine: Engine, sql: str, failure: str, *, memo: bool = False) -> None:
        self.engine = engine
        self.memo = memo
        # psycopg takes %s where sqlite3 takes ?; the SQL here is ours and has no other `?`.
        self.sql = sql.replace("?", "%s") if engine.dialect.name == "postgresql" else sql
        self.failure = failure
        self._errors = (SQLAlchemyError, engine.dialect.loaded_dbapi.Error)

    def first(self, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        """The first row for `params`; raises StoreError when the database fails."""
        memo = getattr(_held, "memo", None) if self.memo else None
        if memo is not None:
            key = (self.sql, params)
            if key in memo:
                return memo[key]
            row = self._read(params)
            memo[key] = row
            return row
        return self._read(params)

    def _read(self, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        try:
            with pooled(self.engine) as driver:
                cur = driver.cursor()
                try:
                    cur.execute(self.sql, params)
                    return cur.fetchone()
                finally:
                    cur.close()
        except self._errors as exc:
            raise StoreError(f"{self.failure}: {exc.__class__.__name__}") from exc


class WouldWait(Exception):
    """Inside a StandingConnection block: this work would wait (a lock, a write, a reload); nothing was done."""


def must_not_wait(what: str) -> None:
    """Raise WouldWait when this thread is in a StandingConnection block: `what` may wait, so it goes elsewhere."""
    if getattr(_held, "no_wait", False):
        raise WouldWait(what)


def _is_busy(exc: BaseException) -> bool:
    # SQLITE_BUSY (5) or SQLITE_LOCKED (6), whatever the extended code.
    # Errors SQLite reported carry the code (Python 3.11+); those the
    # sqlite3 module raises itself (a closed connection) have none.
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (5, 6)


def standing_connection(engine: Engine) -> StandingConnection | None:
    """A StandingConnection for a file-backed SQLite engine; None for anything else."""
    url = engine.url
    # An in-memory database is a different, empty one on every connection.
    in_memory = not url.database or ":memory:" in url.database or "mode=memory" in str(url)
    if url.get_backend_name() != "sqlite" or in_memory:
        return None
    return StandingConnection(engine)


async def read_soon(standing: StandingConnection | None, read: Callable[..., _T], *args: Any) -> _T:
    """`read(*args)`, which only reads through Lookups: on the event loop in a `standing` block when
    nothing has to wait (memoised Lookups may answer from the memo), else in a worker thread.

    A read that would wait raised WouldWait before doing anything, so it is
    simply done again where waiting is allowed. Without a standing
    connection (PostgreSQL, an in-memory database) it is always the thread.
    """
    if standing is not None:
        try:
            with standing.block():
                return read(*args)
        except WouldWait:
            pass
    return await anyio.to_thread.run_sync(read, *args)


class StandingConnection:
    """SQLite only: one connection kept open so a request's reads and its audit append can run on the event loop.

    On SQLite every statement of an admission (the session row, the
    revision, the audit append) takes microseconds unless another writer
    holds the database lock. Handing that work to a worker thread costs
    more than the work (two thread switches and a loop wake-up per call),
    so `block()` runs it where it is, on this connection, which never
    waits: its busy timeout is 0, and whatever would wait raises WouldWait
    before doing anything (a locked database, a session row to write, a
    policy to reload; see `must_not_wait`). The caller then does the same
    work in a worker thread on a pooled connection, which may wait.

    The connection is off the pool (its settings never reach a pooled one),
    belongs to the first thread that uses it (another thread gets
    WouldWait), and does not checkpoint the WAL itself: a checkpoint may
    write out and sync many pages. Instead every `THREAD_TURN`th block
    raises WouldWait, so that work goes through a pooled connection, whose
    commit runs SQLite's automatic checkpoint when the WAL is long.
    """

    THREAD_TURN = 100
    MEMO_SIZE = 10_000

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._raw: _OffPool | None = None
        self._owner: int | None = None
        self._uses = 0
        # Lookups' rows (Lookup(memo=True)), valid while SQLite's data_version
        # for this connection stays `_version`: it changes exactly when
        # another connection (any process) commits.
        self._memo: dict[tuple[str, tuple[Any, ...]], Any] = {}
        self._version: Any = None

    @contextmanager
    def block(self) -> Iterator[None]:
        """Lookups and appends on this engine in this block use the standing connection and never wait."""
        if self._owner is None:
            self._owner = threading.get_ident()
        if self._owner != threading.get_ident() or getattr(_held, "engine", None) is not None:
            raise WouldWait("the standing connection belongs to another thread or block")
        self._uses += 1
        if self._uses % self.THREAD_TURN == 0:
            raise WouldWait("a pooled connection's turn (it checkpoints the WAL)")
        if self._raw is None:
            self._raw = self._open()
            # data_version counts per connection: a new one starts afresh.
            self._memo.clear()
            self._version = None
        self._refresh_memo()
        _held.engine, _held.raw, _held.no_wait, _held.memo = self.engine, self._raw, True, self._memo
        try:
            yield
        finally:
            # None when a failed statement made pooled() close it: reopened next time.
            self._raw = _held.raw
            _held.engine, _held.raw, _held.no_wait, _held.memo = None, None, False, None

    def _refresh_memo(self) -> None:
        try:
            cur = self._raw.driver_connection.cursor()
            try:
                cur.execute("PRAGMA data_version")
                version = cur.fetchone()[0]
            finally:
                cur.close()
        except Exception as exc:
            self._memo.clear()
            if not _is_busy(exc):
                self.close()
            raise WouldWait(f"the data version could not be read: {exc.__class__.__name__}") from exc
        if version != self._version or len(self._memo) >= self.MEMO_SIZE:
            self._memo.clear()
            self._version = version

    def close(self) -> None:
        """Close the connection (a later block opens another)."""
        self._memo.clear()
        self._version = None
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()

    def _open(self) -> _OffPool:
        conn = None
        try:
            # Made by the pool (so the engine's connect hooks ran), then taken off it.
            raw = self.engine.raw_connection()
            raw.detach()
            conn = _OffPool(raw.dbapi_connection)
            cur = conn.driver_connection.cursor()
            try:
                cur.execute("PRAGMA busy_timeout=0")
                cur.execute("PRAGMA wal_autocheckpoint=0")
            finally:
                cur.close()
        except Exception as exc:
            if conn is not None:
                conn.close()
            # The pooled path reports the failure as it always has.
            raise WouldWait(f"the standing connection could not be opened: {exc.__class__.__name__}") from exc
        return conn


class _OffPool:
    """A connection taken off the pool, with the two things `pooled` uses of a pooled one."""

    def __init__(self, driver_connection: Any) -> None:
        self.driver_connection = driver_connection

    def close(self) -> None:
        self.driver_connection.close()
