"""Migration 0007 (upstream health reports, when definitions were recorded) goes up and down cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads


def test_0007_adds_and_removes_the_status_table_and_the_pinned_at_column(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "upstream_status" in inspect(engine).get_table_names()
        assert "pinned_at" in {c["name"] for c in inspect(engine).get_columns("upstreams")}
        command.downgrade(alembic_config(engine), "0006")
        assert current_heads(engine) == {"0006"}
        assert "upstream_status" not in inspect(engine).get_table_names()
        assert "pinned_at" not in {c["name"] for c in inspect(engine).get_columns("upstreams")}
        command.upgrade(alembic_config(engine), "0007")
        assert "upstream_status" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
