"""Migration 0011 (the policy change log) goes up and down cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def test_0011_adds_and_removes_the_change_log(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert {"revision", "kind", "key"} <= {c["name"] for c in inspect(engine).get_columns("policy_changes")}
        command.downgrade(alembic_config(engine), "0010")
        assert current_heads(engine) == {"0010"}
        assert "policy_changes" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
    finally:
        engine.dispose()
