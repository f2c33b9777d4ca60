"""Driver-level reads, one pooled connection shared across an admission, and SQLite's standing connection."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, text

from mcp_acl.audit import AuditLog
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import StoreError, make_engine, upgrade
from mcp_acl.store.lookup import (
    Lookup, StandingConnection, WouldWait, must_not_wait, one_connection, standing_connection,
)

ALICE = Identity("alice", "cli", issuer="http://127.0.0.1:8000")


@pytest.fixture
def migrated(engine):
    upgrade(engine)
    return engine


def _checkouts(engine) -> list[int]:
    seen: list[int] = []
    event.listen(engine.pool, "checkout", lambda *_: seen.append(1))
    return seen


def test_a_lookup_returns_the_first_row_or_none(migrated):
    lookup = Lookup(migrated, "SELECT id FROM sessions WHERE id = ?", "the sessions table could not be used")
    assert lookup.first(("nope",)) is None
    assert Lookup(migrated, "SELECT 1 + ?", "x").first((1,))[0] == 2


def test_a_failing_lookup_raises_store_error(migrated):
    with pytest.raises(StoreError, match="the table could not be used"):
        Lookup(migrated, "SELECT * FROM no_such_table", "the table could not be used").first()


def test_lookups_and_an_append_in_one_block_share_one_checkout(migrated):
    lookup = Lookup(migrated, "SELECT 1", "x")
    audit = AuditLog(migrated)
    seen = _checkouts(migrated)
    with one_connection(migrated):
        lookup.first()
        lookup.first()
        audit.record_decision(session_id=None, identity=ALICE, action="tools/call", target="tool:x",
                              args={}, decision=Decision(True, "ok", None, 1), latency_ms=0.1)
        lookup.first()
    assert len(seen) == 1
    assert audit.verify().ok and audit.last_id() == 1


def test_a_failed_statement_in_a_block_lets_the_next_use_check_out_afresh(migrated):
    good, bad = Lookup(migrated, "SELECT 1", "x"), Lookup(migrated, "SELECT * FROM no_such_table", "y")
    seen = _checkouts(migrated)
    with one_connection(migrated):
        good.first()
        with pytest.raises(StoreError):
            bad.first()
        assert good.first() == (1,)
    assert len(seen) == 2


# -- the standing connection (SQLite: admissions on the event loop) ----------


@pytest.fixture
def sqlite_migrated(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _hold_write_lock(engine):
    # Another connection takes SQLite's write lock and keeps it until closed.
    raw = engine.raw_connection()
    raw.driver_connection.execute("BEGIN IMMEDIATE")
    return raw


def test_only_a_file_backed_sqlite_engine_gets_a_standing_connection(engine, database_url):
    # PostgreSQL's statements are network round trips: they always run in a worker thread.
    assert (standing_connection(engine) is not None) == database_url.startswith("sqlite")
    assert standing_connection(make_engine("sqlite://")) is None
    assert standing_connection(make_engine("sqlite:///:memory:")) is None


def test_a_standing_block_reads_and_appends_without_a_pool_checkout(sqlite_migrated):
    standing = standing_connection(sqlite_migrated)
    lookup = Lookup(sqlite_migrated, "SELECT revision FROM policy_revision WHERE id = 1", "x")
    audit = AuditLog(sqlite_migrated)
    with standing.block():  # opens the standing connection (one checkout, then off the pool)
        lookup.first()
    seen = _checkouts(sqlite_migrated)
    for _ in range(3):
        with standing.block():
            lookup.first()
            audit.record_decision(session_id=None, identity=ALICE, action="tools/call", target="tool:x",
                                  args={}, decision=Decision(True, "ok", None, 1), latency_ms=0.1)
    assert seen == []
    assert audit.verify().ok and audit.last_id() == 3
    standing.close()


def test_a_locked_database_raises_would_wait_and_writes_nothing(sqlite_migrated):
    standing = standing_connection(sqlite_migrated)
    audit = AuditLog(sqlite_migrated)
    holder = _hold_write_lock(sqlite_migrated)
    try:
        with pytest.raises(WouldWait), standing.block():
            audit.record_decision(session_id=None, identity=ALICE, action="tools/call", target="tool:x",
                                  args={}, decision=Decision(True, "ok", None, 1), latency_ms=0.1)
    finally:
        holder.driver_connection.rollback()
        holder.close()
    assert audit.last_id() == 0
    with standing.block():  # the same connection goes on once the lock is free
        audit.record_decision(session_id=None, identity=ALICE, action="tools/call", target="tool:x",
                              args={}, decision=Decision(True, "ok", None, 1), latency_ms=0.1)
    assert audit.last_id() == 1 and audit.verify().ok
    standing.close()


def test_must_not_wait_raises_only_inside_a_standing_block(sqlite_migrated):
    must_not_wait("a write")  # outside a block: nothing happens
    standing = standing_connection(sqlite_migrated)
    with pytest.raises(WouldWait, match="a write"), standing.block():
        must_not_wait("a write")
    standing.close()


def test_a_memo_lookup_rereads_once_another_connection_commits(sqlite_migrated):
    standing = standing_connection(sqlite_migrated)
    revision = Lookup(sqlite_migrated, "SELECT revision FROM policy_revision WHERE id = 1", "x", memo=True)
    with standing.block():
        before = revision.first()[0]
    with sqlite_migrated.begin() as conn:  # another connection (as the CLI would be) commits
        conn.execute(text("UPDATE policy_revision SET revision = revision + 1 WHERE id = 1"))
    with standing.block():
        assert revision.first()[0] == before + 1
    standing.close()


def test_a_memo_lookup_is_not_reread_while_nothing_was_committed(sqlite_migrated):
    standing = standing_connection(sqlite_migrated)
    revision = Lookup(sqlite_migrated, "SELECT revision FROM policy_revision WHERE id = 1", "x", memo=True)
    with standing.block():
        revision.first()
    statements: list[str] = []
    standing._raw.driver_connection.set_trace_callback(statements.append)
    with standing.block():
        revision.first()
    assert statements == ["PRAGMA data_version"]
    standing.close()


def test_every_thread_turn_a_block_hands_the_work_to_a_pooled_connection(sqlite_migrated):
    standing = standing_connection(sqlite_migrated)
    refused = 0
    for _ in range(StandingConnection.THREAD_TURN * 2):
        try:
            with standing.block():
                pass
        except WouldWait:
            refused += 1
    assert refused == 2
    standing.close()


def test_a_standing_connection_refuses_another_thread(sqlite_migrated):
    standing = standing_connection(sqlite_migrated)
    with standing.block():
        pass
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with standing.block():
                pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], WouldWait)
    standing.close()


def test_a_failed_statement_drops_the_standing_connection_and_the_memo(sqlite_migrated):
    standing = standing_connection(sqlite_migrated)
    revision = Lookup(sqlite_migrated, "SELECT revision FROM policy_revision WHERE id = 1", "x", memo=True)
    bad = Lookup(sqlite_migrated, "SELECT * FROM no_such_table", "y")
    with standing.block():
        revision.first()
        first = standing._raw
        with pytest.raises(StoreError):
            bad.first()
    assert standing._raw is None
    with standing.block():
        statements: list[str] = []
        standing._raw.driver_connection.set_trace_callback(statements.append)
        revision.first()
    assert standing._raw is not first
    assert any(s.startswith("SELECT revision") for s in statements)  # read afresh, not from the old memo
    standing.close()


def test_after_a_failed_statement_a_block_never_falls_back_to_a_pooled_connection(sqlite_migrated):
    # The rest of the block must not run on a connection that waits for locks.
    standing = standing_connection(sqlite_migrated)
    good, bad = Lookup(sqlite_migrated, "SELECT 1", "x"), Lookup(sqlite_migrated, "SELECT * FROM no_such_table", "y")
    with standing.block():  # the standing connection is open
        good.first()
    seen = _checkouts(sqlite_migrated)
    with pytest.raises(WouldWait), standing.block():
        with pytest.raises(StoreError):
            bad.first()
        good.first()
    assert seen == [] and standing._raw is None
    with standing.block():  # the next block opens a standing connection afresh
        assert good.first() == (1,)
        assert standing._raw.driver_connection.execute("PRAGMA busy_timeout").fetchone() == (0,)
    standing.close()
