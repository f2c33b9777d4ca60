"""Migration 0004: an existing audit log gets a head record from its chain and keeps growing it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic import command
from sqlalchemy import insert

from mcp_acl.audit import GENESIS_HASH, AuditLog
from mcp_acl.audit.chain import row_hash, timestamp
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads
from mcp_acl.store.tables import audit_events as ev


def chain_rows(count: int) -> list[dict]:
    """Rows as the appender before 0004 wrote them."""
    rows, prev = [], GENESIS_HASH
    start = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    for n in range(1, count + 1):
        row = {name: None for name in ev.c.keys()} | {
            "id": n, "at": start + timedelta(seconds=n), "kind": "authentication", "action": "authenticate",
            "decision": "deny", "reason": f"expired {n}", "prev_hash": prev,
        }
        row["hash"] = prev = row_hash(row | {"at": timestamp(row["at"])})
        rows.append(row)
    return rows


def test_an_existing_log_gets_its_head_and_the_next_row_follows_it(database_url):
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "0003")
        rows = chain_rows(4)
        with engine.begin() as conn:
            conn.execute(insert(ev), rows)
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)  # the newest head; 0004 ran on the way
        log = AuditLog(engine)
        assert log.head() == (4, rows[-1]["hash"])
        assert log.verify().ok
        assert log.record_decision(session_id=None, identity=Identity("alice"), action="call", target="tool:x",
                                   args={}, decision=Decision(False, "no"), latency_ms=0.1) == 5
        result = log.verify()
        assert (result.ok, result.count) == (True, 5)
    finally:
        engine.dispose()


def test_an_empty_log_starts_its_head_at_genesis(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert AuditLog(engine).head() == (0, GENESIS_HASH)
    finally:
        engine.dispose()


def test_the_migration_goes_down_and_up_again(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "0003")
        assert current_heads(engine) == {"0003"}
        upgrade(engine)
        assert AuditLog(engine).head() == (0, GENESIS_HASH)
    finally:
        engine.dispose()
