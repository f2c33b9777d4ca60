"""Migration 0020 (the last full verification of the audit chain) goes up and down cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def test_0020_adds_and_removes_the_audit_checks_table(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "audit_checks" in inspect(engine).get_table_names()
        command.downgrade(alembic_config(engine), "0019")
        assert "audit_checks" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
        assert "audit_checks" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
