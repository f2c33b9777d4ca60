"""Migration 0009 (the access-token ledger, codes' revocation mark) goes up and down cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def test_0009_adds_and_removes_the_ledger_and_the_codes_mark(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "access_tokens" in inspect(engine).get_table_names()
        assert "revoked_at" in {c["name"] for c in inspect(engine).get_columns("oauth_codes")}
        command.downgrade(alembic_config(engine), "0008")
        assert current_heads(engine) == {"0008"}
        assert "access_tokens" not in inspect(engine).get_table_names()
        assert "revoked_at" not in {c["name"] for c in inspect(engine).get_columns("oauth_codes")}
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
    finally:
        engine.dispose()
