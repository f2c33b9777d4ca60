"""Migration 0016 (personal access tokens) goes up and down cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def test_0016_adds_and_removes_the_personal_tokens_table(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "personal_tokens" in inspect(engine).get_table_names()
        command.downgrade(alembic_config(engine), "0011")
        assert current_heads(engine) == {"0011"}
        assert "personal_tokens" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
    finally:
        engine.dispose()
