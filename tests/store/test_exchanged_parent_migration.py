"""Migration 0017 (the parent of an exchanged token in the ledger) goes up and down cleanly, keeping the ledger's rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic import command
from sqlalchemy import inspect, text

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def _columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("access_tokens")}


def test_0017_adds_and_removes_the_parent_jti_column(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "parent_jti" in _columns(engine)
        assert "ix_access_tokens_parent_jti" in {i["name"] for i in inspect(engine).get_indexes("access_tokens")}
        command.downgrade(alembic_config(engine), "0016")
        assert current_heads(engine) == {"0016"}
        assert "parent_jti" not in _columns(engine)
        expires = datetime.now(timezone.utc) + timedelta(hours=1)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO access_tokens (jti, expires_at) VALUES ('before', :e)"), {"e": expires})
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT jti, parent_jti FROM access_tokens")).all() == [("before", None)]
    finally:
        engine.dispose()
