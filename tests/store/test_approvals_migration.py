"""Migration 0013 (approvals) goes up and down cleanly, keeping the grants it found."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import PolicyAdmin, make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def test_0013_adds_and_removes_approvals(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        admin = PolicyAdmin(engine)
        admin.add_role("analyst")
        plain = admin.add_grant("role:analyst", "tool:a")
        assert "approval_by" in {c["name"] for c in inspect(engine).get_columns("grants")}
        assert {"status", "grant_id", "args_digest", "valid_until"} <= {c["name"] for c in inspect(engine).get_columns("approval_requests")}
        command.downgrade(alembic_config(engine), "0011")
        assert current_heads(engine) == {"0011"}
        assert "approval_requests" not in inspect(engine).get_table_names()
        assert "approval_by" not in {c["name"] for c in inspect(engine).get_columns("grants")}
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
        assert [(g.id, g.approval_by) for g in PolicyAdmin(engine).list_grants()] == [(plain, None)]
    finally:
        engine.dispose()
