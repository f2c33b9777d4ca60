"""Appending hash-chained rows to `audit_events` through the driver's own connection.

Every call's decision row is committed before the tool runs, so this is on
the hot path of every tools/call. Through SQLAlchemy Core one append cost
about 300 µs, nearly all of it statement and result machinery; the same
statements on the DBAPI connection cost a fraction of that. What is
written is the same: the values go through the columns' own bind
processors (so `at` is stored exactly as SQLAlchemy stores it), and the
transaction is the same:

    take the append lock (PostgreSQL: advisory transaction lock under READ
      COMMITTED; SQLite: BEGIN IMMEDIATE takes the database write lock,
      waiting up to busy_timeout)
    read the last row's id and hash (inside the lock: another process may
      have appended since)
    insert the rows, each naming the previous hash
    commit (or roll back everything and raise)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from mcp_acl.audit.chain import GENESIS_HASH, row_hash, timestamp
from mcp_acl.store import tables as t
from mcp_acl.store.lookup import pooled

# pg_advisory_xact_lock key: the first 8 bytes of sha256("mcp-acl audit"), as a signed bigint.
PG_LOCK_KEY = 0x3F1D5C2B7A6E4D01
COLUMNS = tuple(c.name for c in t.audit_events.c)
_COPIED = ("issuer", "subject", "client_id", "action", "target")


class ChainError(ValueError):
    """A row could not join the chain (e.g. an outcome for a row that is no decision)."""


class Appender:
    """Appends rows to the chain in one transaction per batch, on a pooled DBAPI connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self._postgres = dialect.name == "postgresql"
        mark = "%s" if self._postgres else "?"
        self._insert = f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})"
        self._last = "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1"
        self._ref = f"SELECT kind, session_id, {', '.join(_COPIED)} FROM audit_events WHERE id = {mark}"
        self._lock = (
            f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})" if self._postgres
            else "BEGIN IMMEDIATE"
        )
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(t.audit_events.c):
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((i, process))
        self._processors = tuple(processors)

    def append(self, batch: list[dict[str, Any]]) -> list[int]:
        """Commit `batch` (column values without id, at, hashes) as the next rows; return their ids."""
        with pooled(self.engine) as driver:
            restore = self._begin(driver)
            try:
                ids = self._write(driver, batch)
                driver.commit()
                return ids
            except BaseException:
                driver.rollback()
                raise
            finally:
                if restore is not None:
                    driver.isolation_level = restore

    def _begin(self, driver) -> Any:
        if not self._postgres:
            if driver.in_transaction:  # BEGIN IMMEDIATE must open the transaction
                driver.rollback()
            return None
        # READ COMMITTED: after waiting for the lock, each statement sees
        # the rows just committed by whoever held it. Setting the level
        # costs no round trip (psycopg sends it with its BEGIN).
        from psycopg import IsolationLevel
        from psycopg.pq import TransactionStatus

        if driver.info.transaction_status != TransactionStatus.IDLE:  # end what the pool left open
            driver.rollback()
        saved = driver.isolation_level
        if saved == IsolationLevel.READ_COMMITTED:
            return None
        driver.isolation_level = IsolationLevel.READ_COMMITTED
        return saved

    def _write(self, driver, batch: list[dict[str, Any]]) -> list[int]:
        cur = driver.cursor()
        try:
            cur.execute(self._lock)
            if self._postgres:
                cur.fetchall()
            cur.execute(self._last)
            last = cur.fetchone()
            last_id, last_hash = (int(last[0]), last[1]) if last else (0, GENESIS_HASH)
            ids = []
            for values in batch:
                if values["kind"] == "outcome":
                    values = self._with_decision(cur, values)
                at = datetime.now(timezone.utc)
                row = dict.fromkeys(COLUMNS) | values
                row.update(id=last_id + 1, at=at, prev_hash=last_hash)
                row["hash"] = row_hash(row | {"at": timestamp(at)})
                params = [row[name] for name in COLUMNS]
                for i, process in self._processors:
                    params[i] = process(params[i])
                cur.execute(self._insert, params)
                last_id, last_hash = row["id"], row["hash"]
                ids.append(last_id)
            return ids
        finally:
            cur.close()

    def _with_decision(self, cur, values: dict[str, Any]) -> dict[str, Any]:
        cur.execute(self._ref, (values["ref_id"],))
        ref = cur.fetchone()
        if ref is None or ref[0] != "decision":
            raise ChainError(f"audit row {values['ref_id']} is not a decision; no outcome can refer to it")
        copied = dict(zip(_COPIED, ref[2:]))
        return copied | values | {"session_id": values["session_id"] or ref[1]}
