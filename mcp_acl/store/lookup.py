"""A one-row read on a pooled DBAPI connection, for the reads every request makes.

The session check and the policy revision are read on every tools/call.
Through SQLAlchemy Core each cost 60–80 µs on SQLite, most of it statement
and result machinery; the same SQL on the driver's connection costs a
fraction. Each read runs on its own (SQLite: outside any transaction;
PostgreSQL: in a transaction the pool rolls back on return), so it sees
what is committed now, as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mcp_acl.store.engine import StoreError


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
            raw = self.engine.raw_connection()
            try:
                cur = raw.driver_connection.cursor()
                try:
                    cur.execute(self.sql, params)
                    return cur.fetchone()
                finally:
                    cur.close()
            finally:
                raw.close()
        except self._errors as exc:
            raise StoreError(f"{self.failure}: {exc.__class__.__name__}") from exc
