"""A one-row read on a pooled DBAPI connection, for the reads every request makes.

The session check and the policy revision are read on every tools/call.
Through SQLAlchemy Core each cost 60–80 µs on SQLite, most of it statement
and result machinery; the same SQL on the driver's connection costs a
fraction. Each read sees what is committed now, as before: on SQLite it
runs outside any transaction; on PostgreSQL in the driver's implicit
transaction at the server's default READ COMMITTED (each statement takes a
fresh snapshot), which the audit append or the pool's reset rolls back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mcp_acl.store.engine import StoreError


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
        finally:
            raw.close()
        return
    if _held.raw is None:
        _held.raw = engine.raw_connection()
    try:
        yield _held.raw.driver_connection
    except BaseException:
        # A failed statement may have left the connection unusable: the
        # next use in this block checks out another.
        raw, _held.raw = _held.raw, None
        raw.close()
        raise


class Lookup:
    """One SELECT (placeholders written `?`) giving its first row as a tuple, or None; `failure` starts the error."""

    def __init__(self, engine: Engine, sql: str, failure: str) -> None:
        self.engine = engine
        # psycopg takes %s where sqlite3 takes ?; the SQL here is ours and has no other `?`.
        self.sql = sql.replace("?", "%s") if engine.dialect.name == "postgresql" else sql
        self.failure = failure
        self._errors = (SQLAlchemyError, engine.dialect.loaded_dbapi.Error)

    def first(self, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        """The first row for `params`; raises StoreError when the database fails."""
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
