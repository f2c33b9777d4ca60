"""Appending hash-chained rows to `audit_events` through the driver's own connection.

Every call's decision row is committed before the tool runs, so this is on
the hot path of every tools/call. Through SQLAlchemy Core one append cost
about 300 µs, nearly all of it statement and result machinery; the same
statements on the DBAPI connection cost a fraction of that. What is
written is the same: the values go through the columns' own bind
processors (so `at` is stored exactly as SQLAlchemy stores it), and the
transaction is the same:

    take the append lock and read the head (`audit_head`: the newest
      row's id and hash, inside the lock since another process may have
      appended since). PostgreSQL: `SELECT … FOR UPDATE` on the head row
      under READ COMMITTED, so a second appender waits for the first to
      commit and then reads the head it wrote; SQLite: BEGIN IMMEDIATE
      takes the database write lock (waiting up to busy_timeout) and the
      head is read inside it
    for an allow decided at revision R (`append(..., revision=R)`): read
      the policy revision again, under the lock; if another process
      committed a change since the decision read it, roll back and raise
      PolicyMoved, so the caller decides again on the new policy. No allow
      decided on an older policy is committed after a revocation, on any
      replica. (PostgreSQL: in the statement that inserts and moves the
      head, whose snapshot is taken after the wait for the lock, so no
      round trip is added; the head's own read would not do, its snapshot
      predates the wait. SQLite: a read inside the write lock.)
    insert the rows, numbered from the head's id + 1 (so an id is never
      handed out twice, even when the newest rows were deleted), each
      naming the previous hash, and move the head to the last of them
      (PostgreSQL: inserts and head update in one statement, one round trip)
    commit (or roll back everything and raise)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from mcp_acl.audit.chain import row_hash, timestamp
from mcp_acl.store import tables as t
from mcp_acl.store.lookup import pooled

COLUMNS = tuple(c.name for c in t.audit_events.c)
_COPIED = ("issuer", "subject", "client_id", "action", "target")
# Rows per INSERT on PostgreSQL: well below its 65,535 bind parameters.
_PG_ROWS_PER_INSERT = 1000


class ChainError(ValueError):
    """A row could not join the chain (e.g. an outcome for a row that is no decision)."""


class PolicyMoved(Exception):
    """The policy revision moved after the decision read it; nothing was written, decide again."""

    def __init__(self, decided: int, current: int) -> None:
        super().__init__(f"decided at policy revision {decided}, now {current}")
        self.decided = decided
        self.current = current


class Appender:
    """Appends rows to the chain in one transaction per batch, on a pooled DBAPI connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self._postgres = dialect.name == "postgresql"
        mark = "%s" if self._postgres else "?"
        self._values = f"({', '.join([mark] * len(COLUMNS))})"
        self._insert = f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES "
        self._move_head = f"UPDATE audit_head SET last_id = {mark}, last_hash = {mark} WHERE id = 1"
        self._head = "SELECT last_id, last_hash FROM audit_head WHERE id = 1" + (" FOR UPDATE" if self._postgres else "")
        self._revision = "SELECT revision FROM policy_revision WHERE id = 1"
        self._ref = f"SELECT kind, session_id, {', '.join(_COPIED)} FROM audit_events WHERE id = {mark}"
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(t.audit_events.c):
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((i, process))
        self._processors = tuple(processors)

    def append(self, batch: list[dict[str, Any]], revision: int | None = None, quota: Any = None) -> list[int]:
        """Commit `batch` (column values without id, at, hashes) as the next rows; return their ids.

        With `revision`, raise PolicyMoved (nothing written) unless the
        policy revision is still `revision` inside the append's lock. With
        `quota` (a store.usage.QuotaCharge, for a one-row decision batch),
        the call is counted in the same transaction, under the lock; when a
        quota is used up the row is written as that refusal instead.
        """
        with pooled(self.engine) as driver:
            restore = self._begin(driver)
            try:
                ids = self._write(driver, batch, revision, quota)
                driver.commit()
            except PolicyMoved as moved:
                # Not a failure of the connection: it stays in use (pooled() would drop it).
                driver.rollback()
                ids = moved
            except BaseException:
                driver.rollback()
                raise
            finally:
                if restore is not None:
                    driver.isolation_level = restore
        if isinstance(ids, PolicyMoved):
            raise ids
        return ids

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

    def _write(self, driver, batch: list[dict[str, Any]], revision: int | None, quota: Any = None) -> list[int]:
        cur = driver.cursor()
        try:
            if not self._postgres:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(self._head)
            head = cur.fetchone()
            if head is None:
                raise ChainError("the audit head record is missing, so no row can be numbered; run `mcp-acl audit verify`")
            last_id, last_hash = int(head[0]), head[1]
            if revision is not None and not self._postgres:
                self._require_revision(cur, revision)
            if quota is not None:
                if len(batch) != 1:  # a count belongs to one decision row; never drop the others
                    raise ValueError("a quota is counted with exactly one decision row")
                batch = [batch[0] | quota.run(cur, self._postgres)]
            rows: list[list[Any]] = []
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
                rows.append(params)
                last_id, last_hash = row["id"], row["hash"]
            if self._postgres:
                if not self._insert_postgres(cur, rows, last_id, last_hash, revision):
                    self._require_revision(cur, revision)
                    # The revision held, so the head row itself went (deleted meanwhile).
                    raise ChainError("the audit head record is missing, so no row can be numbered; run `mcp-acl audit verify`")
            else:
                for params in rows:
                    cur.execute(self._insert + self._values, params)
                cur.execute(self._move_head, (last_id, last_hash))
            return list(range(last_id - len(rows) + 1, last_id + 1))
        finally:
            cur.close()

    def _insert_postgres(self, cur, rows: list[list[Any]], last_id: int, last_hash: str, revision: int | None) -> bool:
        # The last INSERT carries the head's update in the same statement:
        # no round trip of its own. With `revision`, the head moves only if
        # the policy is still at it; False when it did not (the caller rolls back).
        chunks = [rows[i:i + _PG_ROWS_PER_INSERT] for i in range(0, len(rows), _PG_ROWS_PER_INSERT)]
        for n, chunk in enumerate(chunks):
            insert = self._insert + ", ".join([self._values] * len(chunk))
            params = [value for row in chunk for value in row]
            if n < len(chunks) - 1:
                cur.execute(insert, params)
            elif revision is None:
                cur.execute(f"WITH added AS ({insert}) {self._move_head}", [*params, last_id, last_hash])
            else:
                cur.execute(
                    f"WITH added AS ({insert}) {self._move_head} AND ({self._revision}) = %s",
                    [*params, last_id, last_hash, revision],
                )
                return cur.rowcount == 1
        return True

    def _require_revision(self, cur, revision: int) -> None:
        cur.execute(self._revision)
        current = cur.fetchone()
        if current is None or int(current[0]) != revision:
            raise PolicyMoved(revision, int(current[0]) if current else 0)

    def _with_decision(self, cur, values: dict[str, Any]) -> dict[str, Any]:
        cur.execute(self._ref, (values["ref_id"],))
        ref = cur.fetchone()
        if ref is None or ref[0] != "decision":
            raise ChainError(f"audit row {values['ref_id']} is not a decision; no outcome can refer to it")
        copied = dict(zip(_COPIED, ref[2:]))
        return copied | values | {"session_id": values["session_id"] or ref[1]}
