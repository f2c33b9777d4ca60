"""Driver-level reads, and one pooled connection shared across an admission."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from mcp_acl.audit import AuditLog
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import StoreError, upgrade
from mcp_acl.store.lookup import Lookup, one_connection

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
